using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Machine;

/// <summary>
/// The shared device side of a PC as QEMU's `-machine pc` presents it: 8259A pair with ELCR, 8254 PIT and port
/// 0x61, CMOS RTC, IOAPIC at 0xFEC00000, HPET at 0xFED00000 (between the PIT/RTC and IRQ 0/8), ACPI PM (PIIX4) at 0x600, PCI host bridge at 0xCF8, 16550 UART at 0x3F8
/// (IRQ 4), system-control/reset ports, isa-debug-exit at 0xF4 and fw_cfg at 0x510. Unmapped ports and MMIO float
/// high and drop writes. Device time comes from one <see cref="IDeviceClock"/>; <see cref="Timers"/> fires timed
/// devices while every vCPU sleeps.
/// </summary>
public sealed class PcDevices : IGuestBus, IDisposable
{
    public IoPortMap Ports { get; } = new();
    public MmioMap Mmio { get; } = new();
    public IDeviceClock Clock { get; }
    public DeviceTimers Timers { get; }
    public Serial16550 Serial { get; }
    public DebugExit DebugExit { get; } = new();
    public FwCfg FwCfg { get; }
    public Pic8259Pair Pic { get; } = new();
    public IoApic IoApic { get; }
    public IsaInterrupts Isa { get; }
    public Pit8254 Pit { get; }
    public CmosRtc Rtc { get; }
    public Hpet Hpet { get; }
    public AcpiPm AcpiPm { get; }
    public PciHostBridge PciHost { get; } = new();
    public SystemControl SystemControl { get; } = new();

    // Set by the VM once it exists: the interrupt entry point the IOAPIC delivers into.
    Action<ApicMessage>? _deliver;

    public PcDevices(int cpus, ulong ramBytes, Action<byte>? serialSink = null, IDeviceClock? clock = null)
    {
        Clock = clock ?? HostDeviceClock.Instance;
        Timers = new DeviceTimers(Clock);
        IoApic = new IoApic(m => _deliver?.Invoke(m));
        Isa = new IsaInterrupts(Pic, IoApic);
        Serial = new Serial16550(MachineInfo.SerialPort, serialSink) { Irq = Isa.Line(IsaInterrupts.Com1) };
        FwCfg = new FwCfg(MachineInfo.FwCfgSelectorPort, cpus, ramBytes);
        // The PIT's IRQ 0 and the RTC's IRQ 8 pass through the HPET, which cuts them off under its legacy route (QEMU).
        Hpet = new Hpet(Clock, Pic.SetIrq, IoApic.SetPin) { Rescheduled = Timers.Reschedule };
        Pit = new Pit8254(Clock, Hpet.PitIrq) { Rescheduled = Timers.Reschedule };
        Rtc = new CmosRtc(Clock, Hpet.RtcIrq, ramBytes: ramBytes) { Rescheduled = Timers.Reschedule };
        AcpiPm = new AcpiPm(Clock);
        Timers.Add(Pit);
        Timers.Add(Rtc);
        Timers.Add(Hpet);

        Ports.Map(MachineInfo.SerialPort, Serial16550.PortCount, Serial);
        Ports.Map(MachineInfo.DebugExitPort, DebugExit.DefaultPortCount, DebugExit);
        Ports.Map(MachineInfo.FwCfgSelectorPort, FwCfg.PortCount, FwCfg);
        Pic.InitializeAsFirmware();
        Pic.Map(Ports);
        Pit.Map(Ports);
        Rtc.Map(Ports);
        AcpiPm.Map(Ports);
        PciHost.Map(Ports);
        SystemControl.Map(Ports);
        Mmio.Map(MachineInfo.IoApicBase, IoApic.Size, IoApic);
        Mmio.Map(Hpet.BaseAddress, Hpet.Size, Hpet);
    }

    /// <summary>Connects the interrupt outputs to <paramref name="vm"/>: the IOAPIC into its delivery entry point,
    /// LAPIC EOIs back to the IOAPIC, and the PIC's INTR to every LAPIC's LINT0.</summary>
    internal void Attach(Vm vm)
    {
        _deliver = m => vm.DeliverInterrupt(m);
        vm.LevelEoi += IoApic.Eoi;
        foreach (var v in vm.Vcpus)
        {
            v.Apic.ExtIntSource = Pic;
            var kick = new LapicTimerKick(v);
            Timers.Add(kick);
            v.Apic.TimerArmed = () => Timers.RescheduleBy(kick.NextEventNs);
        }
        Pic.InterruptRaised = () =>
        {
            foreach (var v in vm.Vcpus) if (v.Apic.AcceptsExtInt) v.RequestEvent();
        };
    }

    public ulong MmioRead(ulong physical, int size) => Mmio.Read(physical, size);
    public void MmioWrite(ulong physical, int size, ulong value) => Mmio.Write(physical, size, value);
    public uint PortIn(ushort port, int size) => Ports.Read(port, size);
    public void PortOut(ushort port, int size, uint value) => Ports.Write(port, size, value);

    public void Dispose() => Timers.Dispose();
}
