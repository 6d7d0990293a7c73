using DynaSmp.Jit.Memory;

namespace DynaSmp.Machine;

/// <summary>The bus as one vCPU sees it: its own LAPIC page (each CPU reaches its own APIC at the same
/// address), everything else shared through the VM's device bus.</summary>
sealed class VcpuBus(Vcpu vcpu, IGuestBus devices) : IGuestBus
{
    public ulong MmioRead(ulong physical, int size)
    {
        var apic = vcpu.Apic;
        if (apic.HardwareEnabled && physical - apic.MmioBase < 0x1000) return apic.MmioRead(physical - apic.MmioBase, size);
        return devices.MmioRead(physical, size);
    }

    public void MmioWrite(ulong physical, int size, ulong value)
    {
        var apic = vcpu.Apic;
        if (apic.HardwareEnabled && physical - apic.MmioBase < 0x1000) { apic.MmioWrite(physical - apic.MmioBase, size, value); return; }
        devices.MmioWrite(physical, size, value);
    }

    public uint PortIn(ushort port, int size) => devices.PortIn(port, size);
    public void PortOut(ushort port, int size, uint value) => devices.PortOut(port, size, value);
}
