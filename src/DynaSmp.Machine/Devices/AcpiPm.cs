namespace DynaSmp.Machine.Devices;

/// <summary>
/// The ACPI fixed hardware of QEMU's PIIX4 PM function at 0x600 (ACPI spec 4.8): PM1a event block (status,
/// write-1-to-clear, and enable), PM1a control block (SCI_EN always set: ACPI mode without an SMI handshake;
/// SLP_TYP with SLP_EN enters a sleep state, and S5 powers the machine off) and the 32-bit PM timer at 3.579545 MHz
/// from the machine's <see cref="IDeviceClock"/>.
/// </summary>
public sealed class AcpiPm : IPortDevice
{
    public const ushort BasePort = 0x600, Pm1aEvent = 0x600, Pm1aControl = 0x604, PmTimer = 0x608, PortCount = 12;
    public const long TimerHz = 3_579_545;
    /// <summary>The SLP_TYP value the DSDT's \_S5 package names (QEMU's PIIX4: 0).</summary>
    public const int S5SleepType = 0;
    const ushort SciEn = 1, SlpEn = 1 << 13;

    readonly IDeviceClock _clock;
    readonly long _startNs;
    ushort _status, _enable, _control = SciEn;

    public AcpiPm(IDeviceClock clock)
    {
        _clock = clock;
        _startNs = clock.NowNs;
    }

    /// <summary>The guest entered S5 (soft off): the machine should end the run with status 0.</summary>
    public Action? PowerOff { get; set; }

    public int MaxAccessSize => 4;

    public void Map(IoPortMap ports) => ports.Map(BasePort, PortCount, this);

    public uint TimerValue => (uint)((_clock.NowNs - _startNs) * (TimerHz / 1e9));

    public uint PortRead(ushort port, int size)
    {
        uint v = (port & ~3) switch
        {
            Pm1aEvent => (uint)(_status | _enable << 16),
            Pm1aControl => _control,
            PmTimer => TimerValue,
            _ => 0,
        };
        return (v >> ((port & 3) * 8)) & (uint)MmioMap.Floating(size);
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        int shift = (port & 3) * 8;
        switch (port & ~3)
        {
            case Pm1aEvent:
            {
                uint v = value << shift, mask = (uint)MmioMap.Floating(size) << shift;
                if ((mask & 0xFFFF) != 0) _status &= (ushort)~(v & 0xFFFF);
                if ((mask & 0xFFFF_0000) != 0) _enable = (ushort)((_enable & ~(mask >> 16)) | (v >> 16));
                break;
            }
            case Pm1aControl:
            {
                ushort v = (ushort)(value << shift);
                _control = (ushort)((v & ~SlpEn) | SciEn);
                if ((v & SlpEn) != 0 && ((v >> 10) & 7) == S5SleepType) PowerOff?.Invoke();
                break;
            }
        }
    }
}
