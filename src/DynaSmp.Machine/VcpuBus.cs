using DynaSmp.Jit.Memory;

namespace DynaSmp.Machine;

/// <summary>The bus as one vCPU sees it: its own LAPIC page (each CPU reaches its own APIC at the same
/// address), everything else shared through the VM's device bus.</summary>
/// <remarks>It also counts these accesses (the exits a hardware hypervisor would take) and records phase marks
/// (<see cref="MachineInfo.PhasePort"/>) for <see cref="VcpuStats"/>: it runs on the vCPU's own thread.</remarks>
sealed class VcpuBus(Vcpu vcpu, IGuestBus devices) : IGuestBus
{
    public ulong MmioRead(ulong physical, int size)
    {
        var apic = vcpu.Apic;
        if (apic.HardwareEnabled && physical - apic.MmioBase < 0x1000) { vcpu.Stats.LapicMmio++; return apic.MmioRead(physical - apic.MmioBase, size); }
        vcpu.Stats.OtherMmio++;
        return devices.MmioRead(physical, size);
    }

    public void MmioWrite(ulong physical, int size, ulong value)
    {
        var apic = vcpu.Apic;
        if (apic.HardwareEnabled && physical - apic.MmioBase < 0x1000) { vcpu.Stats.LapicMmio++; apic.MmioWrite(physical - apic.MmioBase, size, value); return; }
        vcpu.Stats.OtherMmio++;
        devices.MmioWrite(physical, size, value);
    }

    public uint PortIn(ushort port, int size)
    {
        vcpu.Stats.PortIo++;
        return devices.PortIn(port, size);
    }

    public unsafe void PortOut(ushort port, int size, uint value)
    {
        vcpu.Stats.PortIo++;
        if (port == MachineInfo.PhasePort) { vcpu.Stats.RecordPhase(value, vcpu.Core.State->InstructionsRetired, vcpu.Core.ClockNow()); return; }
        devices.PortOut(port, size, value);
    }
}
