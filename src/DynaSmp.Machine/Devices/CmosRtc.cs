namespace DynaSmp.Machine.Devices;

/// <summary>
/// The MC146818 real-time clock and CMOS RAM at 0x70/0x71 (Motorola MC146818A data sheet, as QEMU's mc146818rtc):
/// port 0x70 bit 7 is the NMI mask, bits 6:0 the index. Time comes from the machine's <see cref="IDeviceClock"/>
/// from a wall-clock start; registers A-D with UIP (set for the last 244 us before each update), binary or BCD and
/// 12/24-hour formats, SET to stop updates, and the periodic, alarm and update-ended interrupts on IRQ 8
/// (register C reports and clears them).
/// </summary>
public sealed class CmosRtc : IPortDevice, ITimedDevice
{
    public const ushort IndexPort = 0x70, DataPort = 0x71;
    public const int RegA = 0x0A, RegB = 0x0B, RegC = 0x0C, RegD = 0x0D, Century = 0x32;
    const byte BSet = 0x80, BPie = 0x40, BAie = 0x20, BUie = 0x10, BBinary = 0x04, B24h = 0x02;
    const byte CIrqf = 0x80, CPf = 0x40, CAf = 0x20, CUf = 0x10;
    const long UipNs = 244_000, SecondNs = 1_000_000_000;

    readonly Lock _sync = new();
    readonly IDeviceClock _clock;
    readonly Action<bool> _irq8;
    readonly byte[] _cmos = new byte[128];
    byte _index;
    // Guest time = _epochSeconds + (clock - _epochNs) / 1 s, while SET is clear.
    long _epochSeconds, _epochNs;
    long _advancedTo;          // flags are up to date until this clock time
    long _frozenSeconds;       // time shown while SET holds the clock

    public CmosRtc(IDeviceClock clock, Action<bool> irq8, DateTime? start = null, ulong ramBytes = 0)
    {
        _clock = clock;
        _irq8 = irq8;
        var t = start ?? DateTime.UtcNow;
        _epochSeconds = new DateTimeOffset(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero).ToUnixTimeSeconds();
        _epochNs = _advancedTo = clock.NowNs;
        _cmos[RegA] = 0x26;          // 32.768 kHz time base, 1024 Hz periodic rate
        _cmos[RegB] = B24h;          // 24-hour BCD, as a PC BIOS leaves it
        _cmos[RegD] = 0x80;          // valid RAM and time
        // Memory sizes a BIOS records (QEMU's pc_cmos_init): base 640 KiB, extended KiB (capped), and 64 KiB units above 16 MiB.
        _cmos[0x15] = 0x80; _cmos[0x16] = 0x02;
        ulong ext = Math.Min(ramBytes > (1 << 20) ? (ramBytes - (1 << 20)) >> 10 : 0, 0xFFFF);
        _cmos[0x17] = _cmos[0x30] = (byte)ext; _cmos[0x18] = _cmos[0x31] = (byte)(ext >> 8);
        ulong above16 = Math.Min(ramBytes > (16 << 20) ? (ramBytes - (16 << 20)) >> 16 : 0, 0xFFFF);
        _cmos[0x34] = (byte)above16; _cmos[0x35] = (byte)(above16 >> 8);
        UpdateTimeRegisters(_epochSeconds);
    }

    /// <summary>Port 0x70 bit 7: NMIs are masked (the chipset gates NMI to the CPUs).</summary>
    public bool NmiMasked { get; private set; }

    /// <summary>Set by the machine so reprogramming wakes the device timer thread.</summary>
    public Action? Rescheduled { get; set; }

    public int MaxAccessSize => 1;

    public void Map(IoPortMap ports) => ports.Map(IndexPort, 2, this);

    bool Binary => (_cmos[RegB] & BBinary) != 0;
    bool Running => (_cmos[RegB] & BSet) == 0 && (_cmos[RegA] & 0x70) == 0x20;

    long SecondsAt(long now) => Running ? _epochSeconds + Math.Max(0, now - _epochNs) / SecondNs : _frozenSeconds;

    long PeriodNs
    {
        get
        {
            int rs = _cmos[RegA] & 0x0F;
            if (rs == 0) return 0;
            if (rs <= 2) rs += 7; // 256 and 128 Hz
            return SecondNs * (1L << (rs - 1)) / 32768;
        }
    }

    byte Encode(int v) => Binary ? (byte)v : (byte)((v / 10) << 4 | v % 10);
    int Decode(byte v) => Binary ? v : (v >> 4) * 10 + (v & 0x0F);

    void UpdateTimeRegisters(long seconds)
    {
        var t = DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime;
        _cmos[0] = Encode(t.Second);
        _cmos[2] = Encode(t.Minute);
        if ((_cmos[RegB] & B24h) != 0) _cmos[4] = Encode(t.Hour);
        else { int h = t.Hour % 12 == 0 ? 12 : t.Hour % 12; _cmos[4] = (byte)(Encode(h) | (t.Hour >= 12 ? 0x80 : 0)); }
        _cmos[6] = Encode((int)t.DayOfWeek + 1);
        _cmos[7] = Encode(t.Day);
        _cmos[8] = Encode(t.Month);
        _cmos[9] = Encode(t.Year % 100);
        _cmos[Century] = Encode(t.Year / 100);
    }

    long TimeFromRegisters()
    {
        int hour = Decode((byte)(_cmos[4] & 0x7F));
        if ((_cmos[RegB] & B24h) == 0) { hour %= 12; if ((_cmos[4] & 0x80) != 0) hour += 12; }
        try
        {
            var t = new DateTime(Decode(_cmos[Century]) * 100 + Decode(_cmos[9]), Math.Clamp(Decode(_cmos[8]), 1, 12),
                Math.Clamp(Decode(_cmos[7]), 1, 28 + 3), Math.Clamp(hour, 0, 23), Math.Clamp(Decode(_cmos[2]), 0, 59),
                Math.Clamp(Decode(_cmos[0]), 0, 59), DateTimeKind.Utc);
            return new DateTimeOffset(t).ToUnixTimeSeconds();
        }
        catch (ArgumentOutOfRangeException)
        {
            return _frozenSeconds; // an impossible date (31 February): keep the time the guest stopped at
        }
    }

    // Sets PF/UF/AF for every period and update boundary crossed since the last call; returns true if IRQF rose.
    bool AdvanceLocked(long now)
    {
        if (now <= _advancedTo) return false;
        byte before = _cmos[RegC];
        long period = PeriodNs;
        if (period > 0 && (now - _epochNs) / period != (_advancedTo - _epochNs) / period) _cmos[RegC] |= CPf;
        if (Running)
        {
            long s0 = SecondsAt(_advancedTo), s1 = SecondsAt(now);
            if (s1 != s0)
            {
                UpdateTimeRegisters(s1);
                _cmos[RegC] |= CUf;
                if (AlarmMatches()) _cmos[RegC] |= CAf;
            }
        }
        _advancedTo = now;
        byte enabled = (byte)(_cmos[RegB] & (BPie | BAie | BUie));
        if ((_cmos[RegC] & enabled & 0x70) != 0) _cmos[RegC] |= CIrqf;
        return (before & CIrqf) == 0 && (_cmos[RegC] & CIrqf) != 0;
    }

    // An alarm byte with its two top bits set matches any value.
    bool AlarmMatches() =>
        Match(_cmos[1], _cmos[0]) && Match(_cmos[3], _cmos[2]) && Match(_cmos[5], _cmos[4]);
    static bool Match(byte alarm, byte now) => (alarm & 0xC0) == 0xC0 || alarm == now;

    public long NextEventNs
    {
        get
        {
            lock (_sync)
            {
                byte b = _cmos[RegB];
                long next = long.MaxValue;
                if ((_cmos[RegC] & CIrqf) != 0) return next; // nothing new can be signalled until C is read
                long period = PeriodNs;
                if ((b & BPie) != 0 && period > 0) next = _epochNs + ((_advancedTo - _epochNs) / period + 1) * period;
                if ((b & (BUie | BAie)) != 0 && Running)
                    next = Math.Min(next, _epochNs + ((_advancedTo - _epochNs) / SecondNs + 1) * SecondNs);
                return next;
            }
        }
    }

    public void Advance(long nowNs)
    {
        bool raise;
        lock (_sync) raise = AdvanceLocked(nowNs);
        if (raise) _irq8(true);
    }

    public uint PortRead(ushort port, int size)
    {
        if (port == IndexPort) return 0xFF; // the index register is write-only
        long now = _clock.NowNs;
        bool raise, lower = false;
        byte v;
        lock (_sync)
        {
            raise = AdvanceLocked(now);
            int i = _index;
            switch (i)
            {
                case RegA:
                {
                    long intoSecond = (now - _epochNs) % SecondNs;
                    v = (byte)(_cmos[RegA] & 0x7F);
                    if (Running && intoSecond >= SecondNs - UipNs) v |= 0x80;
                    break;
                }
                case RegC:
                    v = _cmos[RegC];
                    lower = (v & CIrqf) != 0;
                    _cmos[RegC] = 0;
                    Rescheduled?.Invoke();
                    break;
                default:
                    v = _cmos[i];
                    break;
            }
        }
        if (raise && !lower) _irq8(true);
        if (lower) _irq8(false);
        return v;
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        long now = _clock.NowNs;
        lock (_sync)
        {
            if (port == IndexPort)
            {
                _index = (byte)(v & 0x7F);
                NmiMasked = (v & 0x80) != 0;
                return;
            }
            AdvanceLocked(now);
            switch (_index)
            {
                case RegA:
                {
                    bool wasRunning = Running;
                    long shown = SecondsAt(now);
                    _cmos[RegA] = (byte)(v & 0x7F);
                    if (wasRunning && !Running) _frozenSeconds = shown;
                    else if (!wasRunning && Running) { _epochSeconds = _frozenSeconds; _epochNs = now; }
                    break;
                }
                case RegB:
                {
                    bool wasSet = (_cmos[RegB] & BSet) != 0;
                    if (!wasSet && (v & BSet) != 0) _frozenSeconds = SecondsAt(now);
                    // SET also clears UIE (data sheet); a format change re-encodes nothing (the guest rewrites the time).
                    _cmos[RegB] = (byte)((v & BSet) != 0 ? v & ~BUie : v);
                    if (wasSet && (v & BSet) == 0)
                    {
                        _frozenSeconds = TimeFromRegisters();
                        _epochSeconds = _frozenSeconds; _epochNs = now;
                    }
                    break;
                }
                case RegC: case RegD:
                    break; // read-only
                case 0: case 2: case 4: case 6: case 7: case 8: case 9: case Century:
                    _cmos[_index] = v;
                    if (Running) { _epochSeconds = TimeFromRegisters(); _epochNs = now; }
                    break;
                default:
                    _cmos[_index] = v;
                    break;
            }
            Rescheduled?.Invoke();
        }
    }
}
