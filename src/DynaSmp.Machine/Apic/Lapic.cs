using System.Numerics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine.Apic;

/// <summary>
/// One vCPU's local APIC (SDM Vol. 3A chapter 11) with KVM's semantics (kvm-semantics.md): xAPIC register page
/// and x2APIC MSRs, ICR send path, IRR/ISR/TMR/TPR/PPR/EOI, LVTs and the timer, and the INIT/SIPI pending word.
/// </summary>
/// <remarks>Threading: other vCPUs only call <see cref="AcceptIrq"/> (lock-free: IRR/TMR by Interlocked,
/// INIT/SIPI through <see cref="PendingEvents"/>, NMI by Interlocked on the CPU's NmiPending). Everything
/// else runs on the owning vCPU's thread.</remarks>
public sealed unsafe class Lapic : IInterruptController
{
    public const uint Version = 0x0005_0014; // version 0x14 (integrated, "modern" for Linux), max LVT entry 5
    public const ulong ApicBaseBsp = 1 << 8, ApicBaseExtd = 1 << 10, ApicBaseEnable = 1 << 11;

    readonly Vcpu _vcpu;
    readonly bool _loseNmi;
    public PendingEvents Pending;
    /// <summary>Per-rule dispositions of every event that reached this APIC (storm accounting).</summary>
    public ApicEventCounts Counts { get; } = new();

    // IRR/TMR are set by senders (Interlocked); ISR only by the owner.
    readonly uint[] _irr = new uint[8], _isr = new uint[8], _tmr = new uint[8];
    readonly uint[] _lvt = new uint[7]; // CMCI, timer, thermal, perf, LINT0, LINT1, error (register order 0x2F0, 0x320..0x370)
    uint _id, _ldr, _dfr, _svr, _tpr, _esr, _icrLow, _icrHigh, _timerInitial, _timerDivide;
    long _timerDeadline = long.MaxValue; // VM clock ticks; long.MaxValue = disarmed
    ulong _tscDeadline;

    public Lapic(Vcpu vcpu, uint id)
    {
        _vcpu = vcpu;
        _id = id;
        _loseNmi = vcpu.Vm.Config.BrokenRule == Storm.BrokenRule.LoseNmi;
    }

    public ulong ApicBase { get; private set; }
    public uint Id => _id;
    public bool HardwareEnabled => (ApicBase & ApicBaseEnable) != 0;
    public bool X2ApicMode => (ApicBase & ApicBaseExtd) != 0;
    public bool SoftwareEnabled => (Volatile.Read(ref _svr) & 0x100) != 0;
    public bool IsBsp => (ApicBase & ApicBaseBsp) != 0;
    public ulong MmioBase => ApicBase & 0xF_FFFF_F000;
    public long TimerDeadline => Volatile.Read(ref _timerDeadline);

    CpuState* Cpu => _vcpu.Core.State;

    /// <summary>kvm_lapic_reset: RESET puts APIC_BASE back (BSP per the reset-BSP) and the ID to the vCPU id;
    /// INIT keeps both. Everything else returns to its power-up value.</summary>
    public void Reset(bool initEvent, bool resetBsp)
    {
        if (!initEvent)
        {
            ApicBase = MachineInfo.LapicDefaultBase | ApicBaseEnable | (resetBsp ? ApicBaseBsp : 0);
            _id = (uint)_vcpu.Id;
        }
        // IRR words are taken atomically so a vector latched by a racing sender is either counted here or survives.
        long cleared = 0;
        for (int w = 0; w < 8; w++) cleared += BitOperations.PopCount(Interlocked.Exchange(ref _irr[w], 0));
        Counts.FixedClearedByReset += cleared;
        Array.Clear(_isr); Array.Clear(_tmr);
        for (int k = 0; k < _lvt.Length; k++) _lvt[k] = 0x1_0000; // masked
        // KVM_X86_QUIRK_LINT0_REENABLED: the reset-BSP's LINT0 is ExtINT, unmasked, on RESET and INIT.
        if (resetBsp) _lvt[4] = 0x700;
        _ldr = X2ApicMode ? X2ApicLdr(_id) : 0;
        _dfr = 0xFFFF_FFFF;
        Volatile.Write(ref _svr, 0xFF);
        _tpr = 0; _esr = 0; _icrLow = 0; _icrHigh = 0; _timerInitial = 0; _timerDivide = 0;
        _timerDeadline = long.MaxValue; _tscDeadline = 0;
        Cpu->Cr8 = 0;
        Counts.NmiClearedByReset += Interlocked.Exchange(ref Cpu->NmiPending, 0);
        Cpu->NmiBlocked = 0;
        UpdateInterruptRequest();
    }

    static uint X2ApicLdr(uint id) => ((id >> 4) << 16) | (1u << (int)(id & 0xF));

    // ---- acceptance from senders (any thread) --------------------------------------------------

    /// <summary>__apic_accept_irq: latches one routed IPI at this APIC. Returns the trace path; the caller
    /// kicks the target when <paramref name="kick"/> is set.</summary>
    public KvmPath AcceptIrq(in IcrWrite icr, out bool kick)
    {
        kick = false;
        if (!HardwareEnabled) return KvmPath.DroppedHardwareDisabled;
        switch (icr.Mode)
        {
            case DeliveryMode.Fixed:
            case DeliveryMode.LowestPriority:
                if (icr.LevelTriggered && !icr.Level) return KvmPath.FixedDeassertIgnored;
                if (!SoftwareEnabled) return KvmPath.FixedDroppedDisabled;
                int v = icr.Vector;
                uint bit = 1u << (v & 31);
                // PERF: edge-triggered IPIs (nearly all) find the TMR bit clear: skip the locked write then.
                if (icr.LevelTriggered) Interlocked.Or(ref _tmr[v >> 5], bit);
                else if ((Volatile.Read(ref _tmr[v >> 5]) & bit) != 0) Interlocked.And(ref _tmr[v >> 5], ~bit);
                kick = true;
                return LatchIrr(v) ? KvmPath.FixedLatched : KvmPath.FixedCoalesced;
            case DeliveryMode.Nmi:
                kick = true;
                Interlocked.Increment(ref Counts.NmiQueued);
                if (_loseNmi) return KvmPath.NmiQueued; // BrokenRule.LoseNmi: reported, never made pending
                if (Interlocked.Exchange(ref Cpu->NmiPending, 1) != 0) { Interlocked.Increment(ref Counts.NmiCoalesced); return KvmPath.NmiCoalesced; }
                return KvmPath.NmiQueued;
            case DeliveryMode.Init:
            {
                if (icr.IsInitDeassert) return KvmPath.InitDeassertIgnored;
                long now = _vcpu.Core.ClockNow();
                Interlocked.Increment(ref Counts.InitPosted);
                int was = Pending.PostInit();
                kick = true;
                if ((was & PendingEvents.Sipi) != 0) Interlocked.Increment(ref Counts.SipiCancelledByInit);
                if ((was & PendingEvents.Init) != 0) { Interlocked.Increment(ref Counts.InitCoalesced); return KvmPath.InitCoalesced; }
                Volatile.Write(ref Counts.InitLatchedAt, now);
                return (was & PendingEvents.Sipi) != 0 ? KvmPath.InitCancelledSipi : KvmPath.InitLatched;
            }
            case DeliveryMode.Startup:
            {
                long now = _vcpu.Core.ClockNow();
                Interlocked.Increment(ref Counts.SipiPosted);
                kick = true;
                if ((Pending.PostSipi(icr.Vector) & PendingEvents.Sipi) != 0) { Interlocked.Increment(ref Counts.SipiCoalesced); return KvmPath.SipiCoalesced; }
                Volatile.Write(ref Counts.SipiLatchedAt, now);
                return KvmPath.SipiLatched;
            }
            case DeliveryMode.Smi:
                kick = true; // no SMM modelled: the kick is all that happens
                return KvmPath.ExtIntIgnored;
            case DeliveryMode.RemoteRead:
                // KVM reuses the reserved remote-read mode as its PV unhalt kick (KVM_HC_KICK_CPU sends one).
                _vcpu.SetPvUnhalted();
                kick = true;
                return KvmPath.PvUnhaltLatched;
            default:
                return KvmPath.ExtIntIgnored;
        }
    }

    /// <summary>Sets IRR bit <paramref name="v"/> (any thread); false when it was already set (coalesced).</summary>
    bool LatchIrr(int v)
    {
        uint bit = 1u << (v & 31);
        Interlocked.Increment(ref Counts.FixedLatched);
        if ((Interlocked.Or(ref _irr[v >> 5], bit) & bit) != 0) { Interlocked.Increment(ref Counts.FixedCoalesced); return false; }
        Volatile.Write(ref Counts.FixedLatchedAt[v], _vcpu.Core.ClockNow());
        return true;
    }

    /// <summary>Vectors waiting in the IRR (storm accounting).</summary>
    public int IrrCount()
    {
        int n = 0;
        for (int w = 0; w < 8; w++) n += BitOperations.PopCount(Volatile.Read(ref _irr[w]));
        return n;
    }

    // ---- interrupt controller (owner thread) ---------------------------------------------------

    static int HighestBit(uint[] bits)
    {
        for (int w = 7; w >= 0; w--)
        {
            uint x = Volatile.Read(ref bits[w]);
            if (x != 0) return w * 32 + 31 - BitOperations.LeadingZeroCount(x);
        }
        return -1;
    }

    uint Tpr
    {
        get
        {
            // MOV CR8 writes TPR[7:4] (SDM 10.8.6.1): CR8 is the source of truth for the class.
            uint cr8 = (uint)Cpu->Cr8 & 0xF;
            if ((_tpr >> 4) != cr8) _tpr = cr8 << 4;
            return _tpr;
        }
        set { _tpr = value & 0xFF; Cpu->Cr8 = _tpr >> 4; }
    }

    uint Ppr
    {
        get
        {
            uint tpr = Tpr;
            int isrv = HighestBit(_isr);
            uint isrClass = isrv < 0 ? 0 : (uint)isrv & 0xF0;
            return (tpr & 0xF0) >= isrClass ? tpr : isrClass;
        }
    }

    /// <summary>An IRR vector whose priority class beats PPR exists (the APIC can present it to the CPU).</summary>
    public bool HasDeliverableInterrupt()
    {
        if (!HardwareEnabled) return false;
        if (ExtIntPending) return true;
        if (!SoftwareEnabled) return false;
        int v = HighestBit(_irr);
        return v >= 0 && ((uint)v & 0xF0) > (Ppr & 0xF0);
    }

    /// <summary>Keeps CpuState.InterruptRequest in step with the IRR (the CPU only acknowledges when it is set).</summary>
    public void UpdateInterruptRequest() => Volatile.Write(ref Cpu->InterruptRequest, HasDeliverableInterrupt() ? 1 : 0);

    /// <summary>The 8259A pair wired to LINT0 (the PC wires it to every LAPIC; only an unmasked ExtINT LVT listens).</summary>
    public IExtIntSource? ExtIntSource { get; set; }

    /// <summary>LINT0 is unmasked in ExtINT mode (SDM 11.5.1): the PIC's INTR reaches this CPU.</summary>
    public bool AcceptsExtInt => (_lvt[4] & 0x1_0700) == 0x700;

    bool ExtIntPending => ExtIntSource is { InterruptPending: true } && AcceptsExtInt;

    public int Acknowledge()
    {
        // ExtINT bypasses IRR, ISR and PPR: the vector is the PIC's, and the PIC keeps its own in-service state.
        if (ExtIntPending)
        {
            int pic = ExtIntSource!.Acknowledge();
            UpdateInterruptRequest();
            return pic;
        }
        PollTimer(_vcpu.Core.ClockNow());
        if (!HasDeliverableInterrupt()) { UpdateInterruptRequest(); return -1; }
        int v = HighestBit(_irr);
        Interlocked.And(ref _irr[v >> 5], ~(1u << (v & 31)));
        _isr[v >> 5] |= 1u << (v & 31);
        Counts.FixedAcknowledged++;
        _vcpu.Observer?.OnFixedAcknowledged(_vcpu, _vcpu.Core.ClockNow() - Volatile.Read(ref Counts.FixedLatchedAt[v]));
        UpdateInterruptRequest();
        return v;
    }

    void Eoi()
    {
        int v = HighestBit(_isr);
        if (v >= 0)
        {
            _isr[v >> 5] &= ~(1u << (v & 31));
            // A level-triggered vector's EOI goes on to the IOAPICs, which clear remote IRR (kvm_ioapic_send_eoi).
            if ((Volatile.Read(ref _tmr[v >> 5]) & (1u << (v & 31))) != 0) _vcpu.Vm.BroadcastEoi(v);
        }
        UpdateInterruptRequest();
    }

    // ---- timer ---------------------------------------------------------------------------------

    // The APIC timer counts at 1 GHz before the divider, in VM clock ticks (host Stopwatch ticks, or virtual ns).
    double TicksPerNs => _vcpu.Core.Clock.Frequency / 1e9;

    int TimerDivideShift
    {
        get
        {
            uint d = (_timerDivide & 3) | ((_timerDivide >> 1) & 4);
            return d == 7 ? 0 : (int)d + 1; // 000 -> /2 ... 110 -> /128, 111 -> /1
        }
    }

    uint TimerMode => (_lvt[1] >> 17) & 3;

    void ArmTimer(long now)
    {
        if (TimerMode == 2 || _timerInitial == 0) { Volatile.Write(ref _timerDeadline, long.MaxValue); return; }
        long ns = (long)_timerInitial << TimerDivideShift;
        Volatile.Write(ref _timerDeadline, now + (long)(ns * TicksPerNs));
        TimerArmed?.Invoke();
    }

    /// <summary>Called on the owner thread when the timer gets a new deadline, so the machine's timer thread can
    /// kick this vCPU out of guest code when it expires (KVM's hrtimer): the run loop only polls between runs.</summary>
    public Action? TimerArmed { get; set; }

    /// <summary>Fires an expired timer into the IRR (owner thread; called by the run loop and on acknowledge).</summary>
    public void PollTimer(long now)
    {
        if (TimerMode == 2)
        {
            if (_tscDeadline != 0 && _vcpu.Core.ReadTsc() >= _tscDeadline) { _tscDeadline = 0; FireTimer(); }
            return;
        }
        long deadline = Volatile.Read(ref _timerDeadline);
        if (now < deadline) return;
        if (TimerMode == 1) ArmTimer(now); else Volatile.Write(ref _timerDeadline, long.MaxValue);
        FireTimer();
    }

    /// <summary>VM clock time of the next timer event, or long.MaxValue.</summary>
    public long NextTimerEvent(long now)
    {
        if (TimerMode == 2)
        {
            if (_tscDeadline == 0) return long.MaxValue;
            ulong tsc = _vcpu.Core.ReadTsc();
            return _tscDeadline <= tsc ? now : now + (long)(_tscDeadline - tsc);
        }
        return Volatile.Read(ref _timerDeadline);
    }

    void FireTimer()
    {
        uint lvt = _lvt[1];
        if ((lvt & 0x1_0000) != 0 || !SoftwareEnabled) return;
        LatchIrr((int)(lvt & 0xFF));
        UpdateInterruptRequest();
    }

    uint CurrentCount(long now)
    {
        long deadline = Volatile.Read(ref _timerDeadline);
        if (deadline == long.MaxValue || now >= deadline) return 0;
        return (uint)((deadline - now) / TicksPerNs) >> TimerDivideShift;
    }

    // ---- register file -------------------------------------------------------------------------

    /// <summary>Reads register <paramref name="offset"/> (xAPIC page offset; x2APIC MSR n maps to (n - 0x800) << 4).</summary>
    public uint ReadRegister(int offset)
    {
        switch (offset)
        {
            case 0x20: return X2ApicMode ? _id : _id << 24;
            case 0x30: return Version;
            case 0x80: return Tpr;
            case 0x90: return 0; // APR (not modelled, as KVM)
            case 0xA0: return Ppr;
            case 0xB0: return 0;
            case 0xD0: return _ldr;
            case 0xE0: return X2ApicMode ? 0 : _dfr;
            case 0xF0: return Volatile.Read(ref _svr);
            case 0x280: return _esr;
            case 0x2F0: return _lvt[0];
            case 0x300: return _icrLow & ~(1u << 12); // delivery status always idle (KVM)
            case 0x310: return _icrHigh;
            case >= 0x320 and <= 0x370: return _lvt[1 + ((offset - 0x320) >> 4)];
            case 0x380: return _timerInitial;
            case 0x390: return CurrentCount(_vcpu.Core.ClockNow());
            case 0x3E0: return _timerDivide;
        }
        if (offset is >= 0x100 and < 0x180) return _isr[(offset - 0x100) >> 4];
        if (offset is >= 0x180 and < 0x200) return Volatile.Read(ref _tmr[(offset - 0x180) >> 4]);
        if (offset is >= 0x200 and < 0x280) return Volatile.Read(ref _irr[(offset - 0x200) >> 4]);
        return 0;
    }

    /// <summary>Writes register <paramref name="offset"/>; an ICR-low write sends the IPI (xAPIC semantics).</summary>
    public void WriteRegister(int offset, uint value)
    {
        switch (offset)
        {
            case 0x20: // xAPIC ID is writable in KVM; physical routing must follow it (kvm_recalculate_apic_map)
                if (!X2ApicMode && _id != value >> 24) { _id = value >> 24; _vcpu.Vm.OnApicBaseChanged(); }
                break;
            case 0x80: Tpr = value; UpdateInterruptRequest(); break;
            case 0xB0: Eoi(); break;
            case 0xD0: if (!X2ApicMode) _ldr = value & 0xFF00_0000; break;
            case 0xE0: if (!X2ApicMode) _dfr = value | 0x0FFF_FFFF; break;
            case 0xF0:
                Volatile.Write(ref _svr, value & 0x13FF);
                if ((value & 0x100) == 0) for (int k = 0; k < _lvt.Length; k++) _lvt[k] |= 0x1_0000; // SDM 11.4.7.2
                UpdateInterruptRequest();
                break;
            case 0x280: _esr = 0; break; // KVM never sets ESR bits; a write clears it
            case 0x2F0: _lvt[0] = value & 0x1_07FF; break;
            case 0x300:
                _icrLow = value & ~(1u << 12);
                _vcpu.Vm.SendIpi(_vcpu, new IcrWrite(_icrLow, X2ApicMode ? 0 : _icrHigh >> 24));
                break;
            case 0x310: if (!X2ApicMode) _icrHigh = value & 0xFF00_0000; break;
            case 0x320:
            {
                bool wasDeadline = TimerMode == 2;
                _lvt[1] = value & 0x7_10FF;
                if (!SoftwareEnabled) _lvt[1] |= 0x1_0000;
                // Entering or leaving TSC-deadline mode disarms the timer, both the deadline and the count (KVM's
                // apic_update_lvtt; SDM 11.5.4.1).
                if (wasDeadline != (TimerMode == 2))
                {
                    _tscDeadline = 0; _timerInitial = 0;
                    Volatile.Write(ref _timerDeadline, long.MaxValue);
                }
                break;
            }
            case >= 0x330 and <= 0x370:
                _lvt[1 + ((offset - 0x320) >> 4)] = value & 0x1_F7FF | (SoftwareEnabled ? 0 : 0x1_0000u);
                break;
            case 0x380:
                if (TimerMode == 2) break; // ignored in TSC-deadline mode (SDM 11.5.4.1)
                _timerInitial = value;
                ArmTimer(_vcpu.Core.ClockNow());
                break;
            case 0x3E0: _timerDivide = value & 0xB; break;
        }
    }

    /// <summary>xAPIC MMIO (only 4-byte, 16-byte-aligned accesses count; KVM ignores the rest).</summary>
    public ulong MmioRead(ulong offset, int size)
    {
        if (X2ApicMode) return ulong.MaxValue >> (64 - size * 8); // MMIO is off in x2APIC mode
        uint v = ReadRegister((int)(offset & 0xFF0));
        return (v >> (int)((offset & 3) * 8)) & (size == 4 ? 0xFFFF_FFFFu : (1u << (size * 8)) - 1);
    }

    public void MmioWrite(ulong offset, int size, ulong value)
    {
        if (X2ApicMode || size != 4 || (offset & 0xF) != 0) return;
        WriteRegister((int)offset, (uint)value);
    }

    // ---- MSRs ----------------------------------------------------------------------------------

    /// <summary>IA32_APIC_BASE writes (SDM 11.12.5 state transitions; invalid ones #GP).</summary>
    public void WriteApicBase(ulong value)
    {
        if ((value & ~(0xF_FFFF_F000UL | ApicBaseBsp | ApicBaseExtd | ApicBaseEnable)) != 0) throw CpuFault.GP();
        bool en = (value & ApicBaseEnable) != 0, extd = (value & ApicBaseExtd) != 0;
        if (extd && !en) throw CpuFault.GP();
        if (extd && !_vcpu.Vm.Config.X2Apic) throw CpuFault.GP();
        if (X2ApicMode && en && !extd) throw CpuFault.GP(); // x2APIC -> xAPIC must go through disabled
        bool enteringX2 = extd && !X2ApicMode;
        ApicBase = value;
        if (enteringX2) _ldr = X2ApicLdr(_id);
        if (!en) Reset(initEvent: true, resetBsp: false);
        _vcpu.Vm.OnApicBaseChanged();
    }

    /// <summary>x2APIC MSR read (0x800-0x8FF); #GP outside x2APIC mode or for write-only/absent registers.</summary>
    public ulong ReadX2ApicMsr(uint msr)
    {
        if (!X2ApicMode) throw CpuFault.GP();
        int offset = (int)(msr - 0x800) << 4;
        if (msr == 0x830) return _icrLow | ((ulong)_icrHigh << 32);
        if (offset is 0xB0 or 0x3F0 or 0x310 or 0xE0 or 0x90 or 0xC0) throw CpuFault.GP();
        if (!IsX2ApicRegister(offset)) throw CpuFault.GP();
        return ReadRegister(offset);
    }

    public void WriteX2ApicMsr(uint msr, ulong value)
    {
        if (!X2ApicMode) throw CpuFault.GP();
        int offset = (int)(msr - 0x800) << 4;
        switch (offset)
        {
            case 0x300: // ICR: one 64-bit write, 32-bit destination; reserved bits #GP (kvm_x2apic_icr_write)
                if ((value & 0xFFF0_0000 | value & 0x3_0000 | value & 0x2000) != 0) throw CpuFault.GP();
                _icrLow = (uint)value & ~(1u << 12);
                _icrHigh = (uint)(value >> 32);
                _vcpu.Vm.SendIpi(_vcpu, new IcrWrite(_icrLow, _icrHigh));
                return;
            case 0x3F0: // SELF_IPI
                if ((value & ~0xFFUL) != 0) throw CpuFault.GP();
                _vcpu.Vm.SendIpi(_vcpu, new IcrWrite((uint)value | (1u << 18), 0));
                return;
            case 0xB0:
                if (value != 0) throw CpuFault.GP();
                Eoi();
                return;
            case 0x20: case 0x30: case 0xA0: case 0xD0: case 0x390:
                throw CpuFault.GP(); // read-only in x2APIC mode
        }
        if (!IsX2ApicRegister(offset) || offset is >= 0x100 and < 0x280) throw CpuFault.GP();
        if ((value >> 32) != 0) throw CpuFault.GP();
        WriteRegister(offset, (uint)value);
    }

    static bool IsX2ApicRegister(int offset) => offset is 0x20 or 0x30 or 0x80 or 0xA0 or 0xB0 or 0xD0 or 0xF0
        or (>= 0x100 and < 0x280) or 0x280 or 0x2F0 or 0x300 or (>= 0x320 and <= 0x390) or 0x3E0 or 0x3F0;

    public ulong TscDeadline
    {
        get => TimerMode == 2 ? _tscDeadline : 0;
        set { if (TimerMode == 2) { _tscDeadline = value; if (value != 0) TimerArmed?.Invoke(); } }
    }

    // ---- INIT/SIPI acceptance (owner thread) ---------------------------------------------------

    /// <summary>Destination matching for this APIC (kvm_apic_match_dest) with no shorthand.</summary>
    public bool MatchesDestination(bool logical, uint destination)
    {
        if (!logical)
        {
            if (X2ApicMode) return destination == 0xFFFF_FFFF || destination == _id;
            return destination == 0xFF || destination == _id || (destination > 0xFF && destination == _id);
        }
        if (X2ApicMode)
        {
            if (destination == 0xFFFF_FFFF) return true;
            return (destination >> 16) == (_ldr >> 16) && (destination & _ldr & 0xFFFF) != 0;
        }
        uint mda = destination & 0xFF;
        if (mda == 0xFF) return true;
        uint ldr = _ldr >> 24;
        if ((_dfr >> 28) == 0xF) return (ldr & mda) != 0;           // flat
        return (ldr >> 4) == (mda >> 4) && (ldr & mda & 0xF) != 0;   // cluster
    }
}
