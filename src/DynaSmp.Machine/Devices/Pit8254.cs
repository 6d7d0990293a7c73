namespace DynaSmp.Machine.Devices;

/// <summary>
/// The 8254 programmable interval timer at 0x40-0x43 (Intel 8254 data sheet) clocked at 1.193182 MHz from the
/// machine's <see cref="IDeviceClock"/>, plus port 0x61 (channel 2 gate in bit 0, its output in bit 5; what Linux
/// uses to calibrate the TSC). Counters are computed from the time they were loaded, never stepped. Modes 0
/// (interrupt on terminal count), 2 (rate generator) and 3 (square wave) are modelled; 1, 4 and 5 count like 0
/// with their gate rules. Channel 0's output drives IRQ 0 (edges raised by <see cref="Advance"/>).
/// </summary>
public sealed class Pit8254 : IPortDevice, ITimedDevice
{
    public const ushort BasePort = 0x40, SystemControlPortB = 0x61;
    public const long Hz = 1_193_182;

    sealed class Channel
    {
        public int Mode, Rw, Count = 0x10000;
        public bool Bcd, Gate, Loaded, NullCount;
        public long LoadNs;
        public bool WriteHigh, ReadHigh;     // lo/hi flip-flops
        public byte PendingLow;
        public int? LatchedCount; public bool LatchedHigh;
        public byte? LatchedStatus;
        public long NextIrqNs = long.MaxValue;
    }

    readonly Lock _sync = new();
    readonly IDeviceClock _clock;
    readonly Action<bool> _irq0;
    readonly Channel[] _ch = [new(), new(), new()];
    byte _portB; // bits 0-3 as written (gate 2, speaker data, parity/IO check disables)

    /// <summary>Set by the machine so reprogramming wakes the device timer thread.</summary>
    public Action? Rescheduled { get; set; }

    public Pit8254(IDeviceClock clock, Action<bool> irq0)
    {
        _clock = clock;
        _irq0 = irq0;
        _ch[0].Gate = _ch[1].Gate = true;
    }

    public int MaxAccessSize => 1;

    public void Map(IoPortMap ports)
    {
        ports.Map(BasePort, 4, this);
        ports.Map(SystemControlPortB, 1, this);
    }

    long Ticks(Channel c, long now) => (long)((now - c.LoadNs) * (Hz / 1e9));
    long NsForTicks(long ticks) => (long)Math.Ceiling(ticks * (1e9 / Hz));

    /// <summary>The counting element of <paramref name="c"/> at <paramref name="now"/>.</summary>
    int CountAt(Channel c, long now)
    {
        if (!c.Loaded) return c.Count & 0xFFFF;
        long d = Ticks(c, now);
        int n = c.Count;
        switch (c.Mode)
        {
            case 2: return (int)(n - d % n);
            case 3:
            {
                // Counts down by two each clock, twice per period (odd counts: a half-period longer high phase).
                long half = d % n;
                long high = (n + 1) / 2;
                return (int)(half < high ? (n - 2 * half) & 0xFFFE : (n - 2 * (half - high)) & 0xFFFE) & 0xFFFF;
            }
            default: return (int)((n - d) & 0xFFFF);
        }
    }

    bool OutputAt(Channel c, long now)
    {
        if (!c.Loaded) return c.Mode != 0;
        long d = Ticks(c, now);
        int n = c.Count;
        switch (c.Mode)
        {
            case 0: return d >= n;
            case 1: return d >= n;
            case 2: return d % n != n - 1;
            case 3: return d % n < (n + 1) / 2;
            case 4: case 5: return d != n;
            default: return true;
        }
    }

    void Load(Channel c, int value, long now)
    {
        c.Count = value == 0 ? 0x10000 : value;
        c.Loaded = c.Gate || c.Mode is 0 or 4; // modes 1 and 5 wait for a gate edge; 2 and 3 need the gate high
        c.LoadNs = now;
        c.NullCount = false;
        if (c == _ch[0]) ScheduleIrq(c, now);
    }

    // Channel 0's next rising output edge: mode 0 once at terminal count, modes 2 and 3 every period.
    void ScheduleIrq(Channel c, long now)
    {
        long next = long.MaxValue;
        if (c.Loaded)
        {
            long d = Ticks(c, now);
            switch (c.Mode)
            {
                case 0: case 1: case 4: case 5:
                    if (d < c.Count) next = c.LoadNs + NsForTicks(c.Count);
                    break;
                case 2: case 3:
                    next = c.LoadNs + NsForTicks((d / c.Count + 1) * c.Count);
                    break;
            }
        }
        c.NextIrqNs = next;
        Rescheduled?.Invoke();
    }

    public long NextEventNs { get { lock (_sync) return _ch[0].NextIrqNs; } }

    /// <summary>Raises IRQ 0 (a pulse: the 8259 and IOAPIC latch the rising edge) for each due output edge; periods
    /// missed while the host was busy are coalesced into one.</summary>
    public void Advance(long nowNs)
    {
        bool fire;
        lock (_sync)
        {
            var c = _ch[0];
            fire = nowNs >= c.NextIrqNs;
            if (fire) ScheduleIrq(c, nowNs);
        }
        if (fire) { _irq0(true); _irq0(false); }
    }

    public uint PortRead(ushort port, int size)
    {
        long now = _clock.NowNs;
        lock (_sync)
        {
            if (port == SystemControlPortB)
            {
                // Bit 4 toggles with DRAM refresh (every 15.085 us); bit 5 is OUT2.
                bool refresh = (now / 15_085) % 2 != 0;
                return (uint)(_portB & 0x0F) | (refresh ? 0x10u : 0) | (OutputAt(_ch[2], now) ? 0x20u : 0);
            }
            if (port == BasePort + 3) return 0xFF; // the control word register is write-only
            var c = _ch[port - BasePort];
            if (c.LatchedStatus is byte st) { c.LatchedStatus = null; return st; }
            int value;
            if (c.LatchedCount is int latched)
            {
                value = latched;
                if (c.Rw == 3 && !c.LatchedHigh) { c.LatchedHigh = true; return (uint)(value & 0xFF); }
                c.LatchedCount = null; c.LatchedHigh = false;
                return c.Rw == 1 ? (uint)(value & 0xFF) : (uint)((value >> 8) & 0xFF);
            }
            value = CountAt(c, now);
            switch (c.Rw)
            {
                case 1: return (uint)(value & 0xFF);
                case 2: return (uint)((value >> 8) & 0xFF);
                default:
                    c.ReadHigh = !c.ReadHigh;
                    return c.ReadHigh ? (uint)(value & 0xFF) : (uint)((value >> 8) & 0xFF);
            }
        }
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        long now = _clock.NowNs;
        byte v = (byte)value;
        lock (_sync)
        {
            if (port == SystemControlPortB)
            {
                bool was = _ch[2].Gate;
                _portB = (byte)(v & 0x0F);
                SetGate(_ch[2], (v & 1) != 0, was, now);
                return;
            }
            if (port == BasePort + 3) { WriteControl(v, now); return; }
            var c = _ch[port - BasePort];
            switch (c.Rw)
            {
                case 1: Load(c, v, now); break;
                case 2: Load(c, v << 8, now); break;
                default:
                    if (!c.WriteHigh)
                    {
                        c.PendingLow = v; c.WriteHigh = true;
                        if (c.Mode == 0) { c.Loaded = false; c.NullCount = true; } // mode 0: the first byte stops counting
                    }
                    else { c.WriteHigh = false; Load(c, c.PendingLow | v << 8, now); }
                    break;
            }
        }
    }

    void SetGate(Channel c, bool gate, bool was, long now)
    {
        c.Gate = gate;
        // Modes 1, 2, 3 and 5 (re)start on a rising gate edge; 2 and 3 stop while it is low (output high).
        if (gate && !was && c.Mode is 1 or 2 or 3 or 5 && !c.NullCount) { c.Loaded = true; c.LoadNs = now; }
        else if (!gate && c.Mode is 2 or 3) c.Loaded = false;
    }

    void WriteControl(byte v, long now)
    {
        int sc = v >> 6;
        if (sc == 3)
        {
            // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 3:1 select the channels.
            for (int k = 0; k < 3; k++)
            {
                if ((v & (2 << k)) == 0) continue;
                var c = _ch[k];
                if ((v & 0x20) == 0 && c.LatchedCount == null) c.LatchedCount = CountAt(c, now);
                if ((v & 0x10) == 0 && c.LatchedStatus == null) c.LatchedStatus = Status(c, now);
            }
            return;
        }
        var ch = _ch[sc];
        int rw = (v >> 4) & 3;
        if (rw == 0)
        {
            if (ch.LatchedCount == null) ch.LatchedCount = CountAt(ch, now); // counter latch command
            return;
        }
        ch.Rw = rw;
        ch.Mode = (v >> 1) & 7;
        if (ch.Mode > 5) ch.Mode -= 4; // 6 and 7 are 2 and 3
        ch.Bcd = (v & 1) != 0;
        ch.WriteHigh = ch.ReadHigh = false;
        ch.LatchedCount = null; ch.LatchedStatus = null;
        ch.Loaded = false; ch.NullCount = true; // a control word stops the counter until a count is written
        if (ch == _ch[0]) ScheduleIrq(ch, now);
    }

    byte Status(Channel c, long now) =>
        (byte)((OutputAt(c, now) ? 0x80 : 0) | (c.NullCount ? 0x40 : 0) | c.Rw << 4 | c.Mode << 1 | (c.Bcd ? 1 : 0));
}
