namespace DynaSmp.Machine.Devices;

/// <summary>
/// The High Precision Event Timer at 0xFED00000 as QEMU's pc machine has it (IA-PC HPET specification 1.0a): a 64-bit
/// main counter at 100 MHz (period 10,000,000 fs), three comparators that each do one-shot and periodic mode, 32- or
/// 64-bit, edge or level, the interrupt status register (write 1 to clear), and the legacy replacement route (timer 0
/// -> ISA IRQ 0, i.e. 8259 input 0 and IOAPIC pin 2; timer 1 -> IRQ 8). No FSB (MSI) delivery. Linux reads it through
/// the ACPI "HPET" table and prefers it to the PIT and PM timer, as on QEMU.
/// </summary>
/// <remarks>
/// Like QEMU's, the device sits between the PIT and RTC and the interrupt controllers: their IRQ 0 and IRQ 8 come in
/// through <see cref="PitIrq"/> and <see cref="RtcIrq"/> and pass only while the legacy route is off. The main counter is
/// computed from the <see cref="IDeviceClock"/> (ticks since it was enabled), never stepped; a comparator's next match is
/// kept as that tick count, so <see cref="DeviceTimers"/> sleeps until the earliest one that can interrupt, and every
/// register access first brings the comparators and status bits up to the present.
/// </remarks>
public sealed class Hpet : IMmioDevice, ITimedDevice
{
    public const ulong BaseAddress = 0xFED0_0000, Size = 0x400;
    public const int Timers = 3;
    public const uint PeriodFs = 10_000_000;      // QEMU's HPET_CLK_PERIOD: 10 ns, 100 MHz
    const long NsPerTick = PeriodFs / 1_000_000;
    /// <summary>General capabilities, low half: vendor 8086, LEG_RT_CAP, COUNT_SIZE_CAP (64-bit), NUM_TIM_CAP = 2, revision 1.</summary>
    public const uint CapabilitiesId = 0x8086_0000u | 1u << 15 | 1u << 13 | (Timers - 1) << 8 | 0x01;
    /// <summary>Tn_INT_ROUTE_CAP: QEMU's pc (i440FX) machine offers IOAPIC input 2 only.</summary>
    public const uint RouteCapability = 1u << 2;

    // General configuration
    const ulong EnableCnf = 1, LegacyRouteCnf = 2;
    // Timer n configuration
    const ulong LevelCnf = 1 << 1, IntEnbCnf = 1 << 2, PeriodicCnf = 1 << 3, PeriodicCap = 1 << 4, SizeCap = 1 << 5,
        ValSetCnf = 1 << 6, Mode32Cnf = 1 << 8, RouteMask = 0x1Fu << 9;
    const ulong TimerWritable = LevelCnf | IntEnbCnf | PeriodicCnf | ValSetCnf | Mode32Cnf | RouteMask;
    const long Never = long.MaxValue;

    struct Comparator
    {
        public ulong Config;    // low half of Tn_CONF_CAP (the capabilities half is constant)
        public ulong Cmp;       // Tn_COMPARATOR as software reads it
        public ulong Period;    // the last value written in periodic mode: what a match adds
        public long MatchAt;    // ticks since enable of the next match, or Never
    }

    readonly Lock _sync = new();
    readonly IDeviceClock _clock;
    readonly Action<int, bool> _pic, _ioApic;
    readonly Comparator[] _t = new Comparator[Timers];
    ulong _config, _status;
    ulong _counterBase;     // the counter while halted; its value at _enableNs while running
    long _enableNs;
    // Even while _counterBase, _enableNs and the enable bit are stable, odd while a writer (holding _sync) changes them:
    // main-counter reads, the clocksource read Linux may do on every vCPU, take no lock (a seqlock).
    int _counterSeq;
    bool _pitLevel, _rtcLevel;
    // The lines as this device drives them: ISA IRQ 0 and 8, and IOAPIC pins of routed (non-legacy) timers.
    bool _irq0, _irq8;
    uint _routedPins;

    /// <summary>Set by the machine so reprogramming wakes the device timer thread.</summary>
    public Action? Rescheduled { get; set; }

    /// <param name="pic">8259 input n (ISA IRQ n).</param>
    /// <param name="ioApic">IOAPIC pin n (GSI n).</param>
    public Hpet(IDeviceClock clock, Action<int, bool> pic, Action<int, bool> ioApic)
    {
        _clock = clock;
        _pic = pic;
        _ioApic = ioApic;
        for (int n = 0; n < Timers; n++) _t[n] = new Comparator { Config = PeriodicCap | SizeCap, Cmp = ulong.MaxValue, MatchAt = Never };
    }

    bool Enabled => (_config & EnableCnf) != 0;
    bool Legacy => (_config & LegacyRouteCnf) != 0;

    /// <summary>Ticks since the counter was enabled (0 while halted).</summary>
    long Elapsed(long now) => Enabled ? Math.Max(0, now - _enableNs) / NsPerTick : 0;

    ulong CounterAt(long now) => _counterBase + (ulong)Elapsed(now);

    // ---- time --------------------------------------------------------------------------------------------------

    // The first tick at or after `from` (ticks since enable) at which timer n's comparator equals the counter's
    // compared bits (the low 32 in 32-bit mode), or Never. A 64-bit comparator behind the counter waits for the
    // counter to wrap, which at 100 MHz is never.
    long FirstMatch(in Comparator t, long from)
    {
        if (!Enabled) return Never;
        ulong counter = _counterBase + (ulong)from;
        ulong ahead = (t.Config & Mode32Cnf) != 0 ? (uint)((uint)t.Cmp - (uint)counter) : t.Cmp - counter;
        return ahead > (ulong)(Never - 1 - from) ? Never : from + (long)ahead;
    }

    // What a periodic match adds: the period, or a whole wrap of the compared bits when it is 0 (the comparator stays
    // put and matches again only after the counter has come round).
    static long Step(in Comparator t) =>
        (t.Config & Mode32Cnf) != 0 ? (t.Period == 0 ? 1L << 32 : (long)(uint)t.Period)
        : t.Period == 0 || t.Period > long.MaxValue / 4 ? Never : (long)t.Period;

    // Takes every match up to now: level status bits set, periodic comparators moved on (missed periods are
    // coalesced into one, as the PIT's are), edge interrupts pulsed. Caller holds the lock.
    void AdvanceLocked(long now)
    {
        if (!Enabled) return;
        long upTo = Elapsed(now);
        for (int n = 0; n < Timers; n++)
        {
            ref var t = ref _t[n];
            if (t.MatchAt > upTo) continue;
            if ((t.Config & PeriodicCnf) != 0)
            {
                long step = Step(t);
                if (step == Never) t.MatchAt = Never;
                else
                {
                    long k = (upTo - t.MatchAt) / step + 1;
                    t.MatchAt = k > (Never - 1 - t.MatchAt) / step ? Never : t.MatchAt + k * step;
                    if (t.MatchAt != Never)
                    {
                        ulong cmp = _counterBase + (ulong)t.MatchAt;
                        t.Cmp = (t.Config & Mode32Cnf) != 0 ? (uint)cmp : cmp;
                    }
                }
            }
            else
            {
                // One-shot: the comparator stays; a 32-bit one matches again when the low half comes round.
                t.MatchAt = (t.Config & Mode32Cnf) != 0 ? t.MatchAt + (1L << 32) : Never;
                if (t.MatchAt <= upTo) t.MatchAt = FirstMatch(t, upTo + 1);
            }
            Fire(n);
        }
    }

    // A match of timer n. Level mode: the status bit is set (with or without Tn_INT_ENB_CNF, as the specification says)
    // and the line follows it. Edge mode: a pulse if the interrupt is enabled; the status bit is not used.
    void Fire(int n)
    {
        ref var t = ref _t[n];
        if ((t.Config & LevelCnf) != 0) { _status |= 1UL << n; UpdateLines(); }
        else if ((t.Config & IntEnbCnf) != 0) Pulse(n);
    }

    // ---- interrupt lines ---------------------------------------------------------------------------------------

    // Where timer n's interrupt goes: -1 for ISA IRQ 0, -8 for ISA IRQ 8 (legacy route), else an IOAPIC pin.
    int RouteOf(int n) => Legacy && n < 2 ? (n == 0 ? -1 : -8) : (int)((_t[n].Config & RouteMask) >> 9);

    bool LevelAsserted(int n) => ((_status >> n) & 1) != 0 && (_t[n].Config & (IntEnbCnf | LevelCnf)) == (IntEnbCnf | LevelCnf) && Enabled;

    // Recomputes the levels this device drives and changes the lines that moved.
    void UpdateLines()
    {
        bool irq0 = Legacy ? LevelAsserted(0) : _pitLevel;
        bool irq8 = Legacy ? LevelAsserted(1) : _rtcLevel;
        uint pins = 0;
        for (int n = 0; n < Timers; n++)
        {
            int r = RouteOf(n);
            if (r >= 0 && LevelAsserted(n)) pins |= 1u << r;
        }
        uint changed = _routedPins ^ pins;
        bool irq0Changed = irq0 != _irq0, irq8Changed = irq8 != _irq8;
        _irq0 = irq0; _irq8 = irq8; _routedPins = pins;
        if (irq0Changed) { _pic(IsaInterrupts.Pit, irq0); changed |= 1u << IsaInterrupts.GsiOf(IsaInterrupts.Pit); }
        if (irq8Changed) { _pic(IsaInterrupts.Rtc, irq8); changed |= 1u << IsaInterrupts.Rtc; }
        for (int pin = 0; changed != 0; pin++, changed >>= 1)
            if ((changed & 1) != 0) _ioApic(pin, PinLevel(pin));
    }

    // An IOAPIC pin is the OR of what drives it: ISA IRQ 0 reaches pin 2 and IRQ 8 pin 8, beside routed timers.
    bool PinLevel(int pin) =>
        ((_routedPins >> pin) & 1) != 0 || (pin == IsaInterrupts.GsiOf(IsaInterrupts.Pit) && _irq0) || (pin == IsaInterrupts.Rtc && _irq8);

    void Pulse(int n)
    {
        int r = RouteOf(n);
        if (r == -1) PulseIsa(IsaInterrupts.Pit, ref _irq0);
        else if (r == -8) PulseIsa(IsaInterrupts.Rtc, ref _irq8);
        else if (!PinLevel(r)) { _ioApic(r, true); _ioApic(r, false); }
    }

    // An edge on an ISA line, unless something holds it high already (then there is no edge to give).
    void PulseIsa(int irq, ref bool held)
    {
        if (held) return;
        int pin = IsaInterrupts.GsiOf(irq);
        bool pinHeld = PinLevel(pin);
        _pic(irq, true);
        if (!pinHeld) _ioApic(pin, true);
        _pic(irq, false);
        if (!pinHeld) _ioApic(pin, false);
    }

    /// <summary>The PIT's channel 0 output (QEMU's HPET_LEGACY_PIT_INT): reaches IRQ 0 only while the legacy route is off.</summary>
    public void PitIrq(bool level)
    {
        lock (_sync) { _pitLevel = level; UpdateLines(); }
    }

    /// <summary>The RTC's interrupt output (HPET_LEGACY_RTC_INT): reaches IRQ 8 only while the legacy route is off; its
    /// level is kept, so turning the route off again shows an RTC interrupt still pending.</summary>
    public void RtcIrq(bool level)
    {
        lock (_sync) { _rtcLevel = level; UpdateLines(); }
    }

    /// <summary>The legacy replacement route is on (tests; the PIT and RTC interrupts are cut off).</summary>
    public bool LegacyRoute { get { lock (_sync) return Legacy; } }

    // ---- ITimedDevice ------------------------------------------------------------------------------------------

    public long NextEventNs
    {
        get
        {
            lock (_sync)
            {
                if (!Enabled) return long.MaxValue;
                long next = Never;
                for (int n = 0; n < Timers; n++)
                {
                    // Only a match that interrupts needs the timer thread; status bits are brought up to date by reads.
                    if ((_t[n].Config & IntEnbCnf) != 0) next = Math.Min(next, _t[n].MatchAt);
                }
                return next >= (long.MaxValue - _enableNs) / NsPerTick ? long.MaxValue : _enableNs + next * NsPerTick;
            }
        }
    }

    public void Advance(long nowNs)
    {
        lock (_sync) AdvanceLocked(nowNs);
    }

    // ---- registers ---------------------------------------------------------------------------------------------

    /// <summary>The main counter now, without the lock. A reader that saw an odd or changed sequence retries; the field
    /// reads are acquires, so the second sequence read cannot pass them. Reads on different vCPUs are ordered as the
    /// monotonic clock samples they take.</summary>
    ulong CounterNow()
    {
        var spin = new SpinWait();
        while (true)
        {
            int seq = Volatile.Read(ref _counterSeq);
            if ((seq & 1) == 0)
            {
                ulong counterBase = Volatile.Read(ref _counterBase);
                long enableNs = Volatile.Read(ref _enableNs);
                bool running = (Volatile.Read(ref _config) & EnableCnf) != 0;
                long now = _clock.NowNs;
                if (Volatile.Read(ref _counterSeq) == seq)
                    return running ? counterBase + (ulong)(Math.Max(0, now - enableNs) / NsPerTick) : counterBase;
            }
            spin.SpinOnce();
        }
    }

    // Writers hold _sync. The increment to odd is a full fence, so no field store moves before it; the release store
    // back to even publishes them.
    void BeginCounterChange() => Interlocked.Increment(ref _counterSeq);
    void EndCounterChange() => Volatile.Write(ref _counterSeq, _counterSeq + 1);

    /// <summary>Any size at any offset reads the bytes of the 64-bit registers there (the specification asks for 32-
    /// and 64-bit accesses; smaller reads are answered rather than refused).</summary>
    public ulong MmioRead(ulong offset, int size)
    {
        if (offset >= Size || size is < 1 or > 8) return MmioMap.Floating(Math.Clamp(size, 1, 8));
        if ((offset & ~7UL) == 0x0F0 && (int)(offset & 7) + size <= 8)
            return (CounterNow() >> (int)(offset & 7) * 8) & MmioMap.Floating(size);
        lock (_sync)
        {
            // The clock is read under the lock, so counter reads from all vCPUs are monotonic in the order they happen.
            long now = _clock.NowNs;
            AdvanceLocked(now);
            int shift = (int)(offset & 7) * 8;
            ulong v = Register(offset & ~7UL, now) >> shift;
            if (shift != 0 && (int)(offset & 7) + size > 8 && offset + 8 < Size) v |= Register((offset & ~7UL) + 8, now) << (64 - shift);
            return v & MmioMap.Floating(size);
        }
    }

    ulong Register(ulong at, long now)
    {
        switch (at)
        {
            case 0x000: return (ulong)PeriodFs << 32 | CapabilitiesId;
            case 0x010: return _config;
            case 0x020: return _status;
            case 0x0F0: return CounterAt(now);
        }
        if (at >= 0x100 && at < 0x100 + 0x20 * Timers)
        {
            ref var t = ref _t[(int)(at - 0x100) / 0x20];
            switch ((at - 0x100) % 0x20)
            {
                case 0x00: return (ulong)RouteCapability << 32 | t.Config;
                case 0x08: return t.Cmp;
            }
        }
        return 0; // reserved, and the FSB route registers of a timer without FSB delivery
    }

    /// <summary>32-bit writes at 4-byte and 64-bit writes at 8-byte boundaries; anything else is dropped (a register is
    /// never half-written by a byte store).</summary>
    public void MmioWrite(ulong offset, int size, ulong value)
    {
        if (offset >= Size) return;
        ulong mask;
        if (size == 8 && (offset & 7) == 0) mask = ulong.MaxValue;
        else if (size == 4 && (offset & 3) == 0)
        {
            int shift = (int)(offset & 4) * 8;
            mask = 0xFFFF_FFFFUL << shift;
            value = (value & 0xFFFF_FFFF) << shift;
        }
        else return;
        lock (_sync)
        {
            long now = _clock.NowNs;
            AdvanceLocked(now);
            Write(offset & ~7UL, value, mask, now);
            UpdateLines();
        }
        Rescheduled?.Invoke();
    }

    void Write(ulong at, ulong value, ulong mask, long now)
    {
        switch (at)
        {
            case 0x010: WriteConfig((_config & ~mask) | (value & mask), now); return;
            case 0x020:
                // Write 1 to clear; edge-mode bits are never set.
                _status &= ~(value & mask & ((1UL << Timers) - 1));
                return;
            case 0x0F0:
                // The specification allows writes only while halted; QEMU drops them while running, and so do we.
                if (!Enabled)
                {
                    BeginCounterChange();
                    _counterBase = (_counterBase & ~mask) | (value & mask);
                    EndCounterChange();
                }
                return;
        }
        if (at < 0x100 || at >= 0x100 + 0x20 * Timers) return;
        int n = (int)(at - 0x100) / 0x20;
        switch ((at - 0x100) % 0x20)
        {
            case 0x00: if ((mask & 0xFFFF_FFFF) != 0) WriteTimerConfig(n, value & mask, now); return;
            case 0x08: WriteComparator(n, value, mask, now); return;
        }
    }

    void WriteConfig(ulong value, long now)
    {
        bool wasEnabled = Enabled;
        BeginCounterChange();
        // The time is taken inside the change: a lock-free read that validated before it began read the clock earlier,
        // so the value the counter halts at (or restarts from) is never behind what a vCPU has already seen.
        now = _clock.NowNs;
        if (wasEnabled && (value & EnableCnf) == 0) _counterBase += (ulong)(Math.Max(0, now - _enableNs) / NsPerTick); // halted: it keeps its value
        else if (!wasEnabled && (value & EnableCnf) != 0) _enableNs = now;
        _config = value & (EnableCnf | LegacyRouteCnf);
        EndCounterChange();
        if (wasEnabled != Enabled)
            for (int n = 0; n < Timers; n++) _t[n].MatchAt = FirstMatch(_t[n], 0); // Never while halted
    }

    void WriteTimerConfig(int n, ulong value, long now)
    {
        ref var t = ref _t[n];
        ulong old = t.Config;
        ulong route = value & RouteMask;
        if ((RouteCapability & (1u << (int)(route >> 9))) == 0) route = old & RouteMask; // an unoffered route does not stick
        t.Config = (old & ~TimerWritable) | (value & TimerWritable & ~RouteMask) | route;
        if ((t.Config & Mode32Cnf) != 0) { t.Cmp = (uint)t.Cmp; t.Period = (uint)t.Period; }
        if ((t.Config & LevelCnf) == 0) _status &= ~(1UL << n); // the status bit belongs to level mode only
        if (((old ^ t.Config) & (PeriodicCnf | Mode32Cnf)) != 0) t.MatchAt = FirstMatch(t, Elapsed(now));
    }

    // Tn_COMPARATOR: in one-shot mode the value to match. In periodic mode a write sets the period (what each match
    // adds); with Tn_VAL_SET_CNF it also sets the comparator itself (the accumulator), and the bit clears itself.
    void WriteComparator(int n, ulong value, ulong mask, long now)
    {
        ref var t = ref _t[n];
        if ((t.Config & Mode32Cnf) != 0) { value &= 0xFFFF_FFFF; mask &= 0xFFFF_FFFF; }
        bool periodic = (t.Config & PeriodicCnf) != 0;
        if (!periodic || (t.Config & ValSetCnf) != 0) t.Cmp = (t.Cmp & ~mask) | (value & mask);
        if (periodic) t.Period = (t.Period & ~mask) | (value & mask);
        t.Config &= ~ValSetCnf;
        t.MatchAt = FirstMatch(t, Elapsed(now));
    }
}
