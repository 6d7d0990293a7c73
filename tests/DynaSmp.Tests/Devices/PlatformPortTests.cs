using DynaSmp.Machine;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>PCI configuration mechanism #1 and the i440FX host bridge, the reset ports, the ACPI PM block, and the
/// MMIO map.</summary>
public class PlatformPortTests
{
    [Fact]
    public void Pci_config_reads_the_host_bridge_and_floats_for_absent_functions()
    {
        var ports = new IoPortMap();
        var pci = new PciHostBridge();
        pci.Map(ports);
        ports.Write(0xCF8, 4, 0x8000_0000);
        Assert.Equal(0x8000_0000u, ports.Read(0xCF8, 4));
        Assert.Equal(0x1237_8086u, ports.Read(0xCFC, 4));
        ports.Write(0xCF8, 4, 0x8000_0008);
        Assert.Equal(0x0600_0002u, ports.Read(0xCFC, 4)); // class: host bridge, revision 2
        Assert.Equal(0x06u, ports.Read(0xCFF, 1));
        ports.Write(0xCF8, 4, 0x8000_0800);               // device 1: nobody
        Assert.Equal(0xFFFF_FFFFu, ports.Read(0xCFC, 4));
        ports.Write(0xCF8, 4, 0x0000_0000);               // enable bit clear: no configuration cycle
        Assert.Equal(0xFFFFu, ports.Read(0xCFC, 2));
    }

    [Fact]
    public void Reset_ports_request_a_reset()
    {
        var ports = new IoPortMap();
        var pci = new PciHostBridge();
        var sys = new SystemControl();
        pci.Map(ports); sys.Map(ports);
        int resets = 0;
        pci.ResetRequested = sys.ResetRequested = () => resets++;
        ports.Write(0xCF9, 1, 0x02);                      // hard-reset select only: no reset
        Assert.Equal(0, resets);
        ports.Write(0xCF9, 1, 0x06);
        Assert.Equal(1, resets);
        ports.Write(0x64, 1, 0xFE);
        Assert.Equal(2, resets);
        Assert.Equal(0x02u, ports.Read(0x92, 1));        // A20 on
        ports.Write(0x92, 1, 0x03);
        Assert.Equal(3, resets);
        ports.Write(0x80, 1, 0x42);
        Assert.Equal(0x42, sys.LastPostCode);
        Assert.Equal(0xFFu, ports.Read(0x64, 1));        // no 8042 behind the command port
    }

    [Fact]
    public void Acpi_pm_timer_counts_at_3_58_mhz_and_s5_powers_off()
    {
        var clock = new ManualDeviceClock();
        var pm = new AcpiPm(clock);
        var ports = new IoPortMap();
        pm.Map(ports);
        clock.Advance(1_000_000_000);
        Assert.InRange(ports.Read(0x608, 4), 3_579_544u, 3_579_545u);
        Assert.Equal(1u, ports.Read(0x604, 2) & 1);      // SCI_EN: already in ACPI mode
        bool off = false;
        pm.PowerOff = () => off = true;
        ports.Write(0x604, 2, (uint)(AcpiPm.S5SleepType << 10));
        Assert.False(off);                                // SLP_TYP alone does nothing
        ports.Write(0x604, 2, (uint)(AcpiPm.S5SleepType << 10 | 1 << 13));
        Assert.True(off);
    }

    sealed class Recorder : IMmioDevice
    {
        public readonly List<(ulong, int, ulong)> Writes = new();
        public ulong MmioRead(ulong offset, int size) => 0x1000 + offset;
        public void MmioWrite(ulong offset, int size, ulong value) => Writes.Add((offset, size, value));
    }

    [Fact]
    public void Mmio_map_dispatches_by_range_and_rejects_overlaps()
    {
        var map = new MmioMap();
        var a = new Recorder();
        map.Map(0xFEC0_0000, 0x1000, a);
        Assert.Equal(0x1010UL, map.Read(0xFEC0_0010, 4));
        map.Write(0xFEC0_0FFC, 4, 7);
        Assert.Equal([(0xFFCUL, 4, 7UL)], a.Writes);
        Assert.Equal(0xFFFF_FFFFUL, map.Read(0xFEC0_1000, 4)); // past the range: floats high
        Assert.Equal(ulong.MaxValue, map.Read(0xFED0_0000, 8));
        Assert.Throws<InvalidOperationException>(() => map.Map(0xFEC0_0800, 0x1000, new Recorder()));
    }

    [Fact]
    public void Pc_devices_route_isa_irq0_to_ioapic_pin2()
    {
        var pc = new PcDevices(1, 64 << 20);
        Assert.Equal(2, IsaInterrupts.GsiOf(0));
        Assert.Equal(4, IsaInterrupts.GsiOf(4));
        // The IOAPIC is at its QEMU address in the bus's MMIO map.
        Assert.Same(pc.IoApic, pc.Mmio.DeviceAt(MachineInfo.IoApicBase + 0x10, out ulong offset));
        Assert.Equal(0x10UL, offset);
        pc.Dispose();
    }
}
