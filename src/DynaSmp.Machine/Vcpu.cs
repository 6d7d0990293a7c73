using System.Diagnostics;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine;

/// <summary>
/// One virtual CPU: a CpuCore, its LAPIC, its mp_state and the KVM_RUN-equivalent loop
/// (kvm_arch_vcpu_ioctl_run / vcpu_run / vcpu_enter_guest / vcpu_block, kvm-semantics.md §5).
/// </summary>
/// <remarks>Only this vCPU's thread changes its mp_state (invariant 2). Other threads post events to its
/// LAPIC and call <see cref="Kick"/>. The loop allocates nothing per iteration.</remarks>
public sealed unsafe class Vcpu : IDisposable
{
    const int ReqEvent = 1;

    public int Id { get; }
    public Vm Vm { get; }
    public CpuCore Core { get; }
    public Lapic Apic { get; }
    public EventTrace Trace { get; }
    /// <summary>The last exit, reused like struct kvm_run.</summary>
    public VcpuExit Exit { get; } = new();
    /// <summary>Counters for `--stats` (see <see cref="VcpuStats"/>).</summary>
    public VcpuStats Stats { get; } = new();

    int _mpState;
    int _requests;
    readonly Storm.BrokenRule _broken;

    /// <summary>Storm checker hook (set before the VM starts); null in normal runs.</summary>
    public IVcpuObserver? Observer { get; set; }
    /// <summary>ICR writes this vCPU made, by delivery mode (index = <see cref="DeliveryMode"/>; INIT de-asserts at 8).</summary>
    public readonly long[] IpisSent = new long[9];
    int _sleeping;
    readonly Host.HostWakeEvent _wake = new();

    // Counters (written by the owning thread).
    public long InitResets, SipiStarts, SipiDrops, AgainReturns, Halts, HaltNoops, Wakeups, BlockedWaits, NmiWaitSpins;
    /// <summary>VM clock time (<see cref="Vm.Clock"/>) when the last SIPI started this vCPU, and when it next halted (AP "online").</summary>
    public long StartedAt, FirstHaltAfterStart;

    /// <summary>IA32_MISC_ENABLE bit 0, Fast-Strings Enable (SDM Vol. 4 Table 2-2).</summary>
    public const ulong MiscEnableFastStrings = 1;

    internal Vcpu(Vm vm, int id)
    {
        Vm = vm;
        Id = id;
        _broken = vm.Config.BrokenRule;
        Core = new CpuCore(vm.Ram, new VcpuBus(this, vm.Devices), vm.Cache, vm.Config.Jit, vm.Clock);
        Trace = new EventTrace(id, vm.Config.TraceCapacity, Core) { Enabled = vm.Config.Trace, KeepFirst = vm.Config.TraceKeepsFirst };
        Apic = new Lapic(this, (uint)id);
        Core.InterruptController = Apic;
        Core.Cpuid.Apic = true;
        Core.Cpuid.ApicId = (uint)id;
        Core.Cpuid.LogicalProcessors = (uint)vm.Config.Vcpus;
        Core.Cpuid.X2Apic = vm.Config.X2Apic;
        Core.Cpuid.KvmParavirt = vm.Config.KvmParavirt;
        Core.MsrReadHook = ReadMsr;
        Core.MsrWriteHook = WriteMsr;
        if (vm.Config.KvmParavirt) Core.HypercallHook = Hypercall;
        bool bsp = id == vm.Config.BspId;
        Core.Reset(initEvent: false);
        // QEMU's vCPU reset writes MSR_IA32_MISC_ENABLE_DEFAULT (fast strings, bit 0) through KVM_SET_MSRS on top of
        // KVM's RESET value, so a QEMU/KVM guest finds fast strings on. Without them Linux prints "Disabled fast string
        // operations" and clears REP_GOOD and ERMS: memcpy, memset and clear_page then run as loops of MOVs instead of
        // the REP MOVS/STOS that tier 1 turns into bulk copies and fills. INIT keeps it (kvm-semantics.md).
        Core.State->MiscEnable |= MiscEnableFastStrings;
        Apic.Reset(initEvent: false, resetBsp: bsp);
        Core.State->ApicBase = Apic.ApicBase;
        // kvm_arch_vcpu_create: the BSP starts RUNNABLE, every AP UNINITIALIZED.
        _mpState = (int)(bsp ? MpState.Runnable : MpState.Uninitialized);
    }

    public MpState MpState => (MpState)Volatile.Read(ref _mpState);

    /// <summary>Guest instructions this vCPU retired (CpuState.InstructionsRetired).</summary>
    public ulong Retired => Core.State->InstructionsRetired;

    /// <summary>The vCPU thread has committed to sleep in vcpu_block (a kick must wake it). For measurements.</summary>
    internal bool Sleeping => Volatile.Read(ref _sleeping) != 0;

    bool IsResetBsp => Id == Vm.Config.BspId;

    void SetMpState(MpState to, KvmPath path, int source = -1)
    {
        var from = MpState;
        Volatile.Write(ref _mpState, (int)to);
        if (to == MpState.Runnable) Volatile.Write(ref _pvUnhalted, 0); // kvm_set_mp_state
        Trace.Record(path, source < 0 ? Id : source, Id, 0, 0, from, to);
        Observer?.OnMpState(this, path, from, to);
    }

    // ---- kicks (any thread) ----------------------------------------------------------------------

    /// <summary>kvm_make_request(KVM_REQ_EVENT) + kvm_vcpu_kick: the request is published (a full fence) before
    /// the target is made to look: leave guest code, and wake it if it sleeps.</summary>
    public void RequestEvent()
    {
        Interlocked.Or(ref _requests, ReqEvent);
        Kick();
    }

    /// <summary>Makes the vCPU re-check its requests: out of translated code if running, awake if blocked.</summary>
    public void Kick()
    {
        Interlocked.Or(ref Core.State->ExitRequest, ExitRequestBits.Stop);
        // Dekker pairing with Block(): it publishes _sleeping, fences, then re-checks for work. We published
        // the work (Interlocked above is a full fence), then read _sleeping: one side always sees the other.
        if (Volatile.Read(ref _sleeping) != 0) _wake.Set();
    }

    // ---- the run loop (owning thread) ------------------------------------------------------------

    /// <summary>One KVM_RUN. Returns when the vCPU needs its caller: "again" after an UNINITIALIZED block,
    /// or a VM-level exit (stop, shutdown, guest error).</summary>
    public VcpuExitReason RunOnce()
    {
        if (MpState == MpState.Uninitialized)
        {
            // KVM_RUN on UNINITIALIZED: block once, accept, return -EAGAIN whatever the new state is.
            if (!HasWakeEvents() && !Vm.StopRequested) Block();
            Interlocked.Exchange(ref _requests, 0); // looked at: a stale request must not make the next block return at once
            AcceptEvents();
            AgainReturns++;
            Trace.Record(KvmPath.UninitializedAgain, Id, Id, 0, 0, MpState, MpState);
            return Exit.Set(VcpuExitReason.Again);
        }
        return VcpuRunLoop();
    }

    VcpuExitReason VcpuRunLoop()
    {
        while (true)
        {
            if (Vm.StopRequested) return Exit.Set(VcpuExitReason.Stopped);
            if (MpState == MpState.Runnable)
            {
                // vcpu_enter_guest: requests first; an INIT accepted here stops the vCPU before guest entry.
                if ((Interlocked.Exchange(ref _requests, 0) & ReqEvent) != 0 || Apic.Pending.Bits != 0)
                {
                    AcceptEvents();
                    if (MpState != MpState.Runnable) continue;
                }
                Apic.PollTimer(Core.ClockNow());
                Apic.UpdateInterruptRequest();
                var exit = Vm.Deterministic ? Core.Run(Vm.Config.DeterministicSlice) : Core.Run();
                Stats.Exits[(int)exit]++;
                switch (exit)
                {
                    case ExitReason.Hlt:
                        Apic.PollTimer(Core.ClockNow());
                        if (HasWakeEvents()) { HaltNoops++; Volatile.Write(ref _pvUnhalted, 0); Trace.Record(KvmPath.HaltNoop, Id, Id, 0, 0, MpState.Runnable, MpState.Runnable); }
                        else
                        {
                            Halts++;
                            if (StartedAt != 0 && FirstHaltAfterStart == 0)
                            {
                                FirstHaltAfterStart = Core.ClockNow();
                                if (Id + 1 < Vm.Vcpus.Length && Vm.Vcpus[Id + 1].ExpectInit()) _skipHaltPoll = true;
                                Stats.OnlineVmInstructions = Vm.RetiredInstructions();
                            }
                            SetMpState(MpState.Halted, KvmPath.Halted);
                        }
                        break;
                    case ExitReason.ExitRequested:
                    case ExitReason.BudgetExhausted:
                        if (Vm.Deterministic) return Exit.Set(VcpuExitReason.Yield);
                        break;
                    case ExitReason.Shutdown:
                        Vm.RecordDiagnosis(GuestDiagnosis.Capture(this, Core.ExitMessage ?? "triple fault", withChain: true));
                        Vm.OnVcpuFailure(this, $"vCPU {Id}: {Core.ExitMessage}", VmExitKind.TripleFault);
                        return Exit.Set(VcpuExitReason.Shutdown, Core.ExitMessage);
                    case ExitReason.Exception:
                        Vm.OnVcpuFailure(this, $"vCPU {Id}: unhandled {Core.ExitMessage}", VmExitKind.GuestError);
                        return Exit.Set(VcpuExitReason.GuestError, Core.ExitMessage);
                    case ExitReason.Unsupported:
                        Vm.RecordDiagnosis(GuestDiagnosis.Capture(this, $"unsupported: {Core.ExitMessage}", withChain: false));
                        Vm.OnVcpuFailure(this, $"vCPU {Id}: unsupported: {Core.ExitMessage}", VmExitKind.Unsupported);
                        return Exit.Set(VcpuExitReason.GuestError, Core.ExitMessage);
                }
                continue;
            }
            // vcpu_block: HALTED and INIT_RECEIVED sleep here until runnable; they never return to the caller.
            if (!Runnable())
            {
                if (Vm.Deterministic) return Exit.Set(VcpuExitReason.Yield);
                Block();
                // A request only asks the vCPU to look again: consume it before looking. Left set, a request that
                // landed after HLT (the timer thread's kick for a deadline already taken) made Block() return at
                // once forever, and the timer was never polled again: Linux SMP boots hung with every vCPU idle.
                Interlocked.Exchange(ref _requests, 0);
                Apic.PollTimer(Core.ClockNow());
                if (!Runnable()) continue; // spurious wake (a kick with nothing for us): sleep again
            }
            Interlocked.Exchange(ref _requests, 0);
            var before = MpState;
            AcceptEvents();
            if (MpState == MpState.Halted)
            {
                Wakeups++;
                SetMpState(MpState.Runnable, KvmPath.WokeFromHalt);
            }
            else if (MpState == MpState.InitReceived && before == MpState.InitReceived
                && (Volatile.Read(ref Core.State->NmiPending) != 0 || Volatile.Read(ref _pvUnhalted) != 0))
            {
                // KVM quirk (kvm-semantics.md invariant 13): a queued NMI keeps a wait-for-SIPI vCPU from sleeping. So
                // does a PV unhalt kick (pv_unhalted is a wake event in every state; only becoming RUNNABLE clears it).
                NmiWaitSpins++;
                // Deterministic mode: this spin must end the turn, or the one scheduler thread never comes back.
                if (Vm.Deterministic) return Exit.Set(VcpuExitReason.Yield);
                Thread.Yield();
            }
        }
    }

    /// <summary>For the deterministic scheduler: a turn would do something (run guest code or accept an event).</summary>
    internal bool CanProgress => Runnable();

    /// <summary>kvm_arch_vcpu_runnable.</summary>
    bool Runnable() => MpState == MpState.Runnable || HasWakeEvents();

    /// <summary>kvm_vcpu_has_events: pending INIT/SIPI, a queued NMI, or (IF set, no shadow) a deliverable
    /// APIC interrupt; an expired LAPIC timer counts (it is about to become an interrupt).</summary>
    bool HasWakeEvents()
    {
        CpuState* s = Core.State;
        if (_broken == Storm.BrokenRule.DropWakeup && MpState == MpState.Halted)
            return (s->Rflags & RFlags.IF) != 0 && s->InterruptShadow == 0 && Apic.HasDeliverableInterrupt();
        if (Apic.Pending.Bits != 0) return true;
        if (Volatile.Read(ref _pvUnhalted) != 0) return true;
        if (Volatile.Read(ref s->NmiPending) != 0) return true;
        if ((s->Rflags & RFlags.IF) != 0 && s->InterruptShadow == 0 && Apic.HasDeliverableInterrupt()) return true;
        return false;
    }

    // Halt polling (KVM's halt_poll_ns): poll briefly before sleeping, because the next event often arrives
    // within microseconds (the SIPI right after an INIT, an IPI answer). Adaptive as KVM's: grow when the wait
    // ended soon after the poll gave up, drop to zero when waits are long, so idle vCPUs stop burning CPU.
    const long HaltPollStartNs = 10_000;
    long HaltPollMaxNs => Vm.Config.HaltPollMaxNs;
    long _haltPollNs = HaltPollStartNs;
    public long HaltPollHits;

    void Block()
    {
        long pollStart = Stopwatch.GetTimestamp();
        bool skip = _skipHaltPoll;
        _skipHaltPoll = false;
        // Wait-for-SIPI after an INIT the bring-up poll caught: the STARTUP follows within microseconds, whatever the
        // adaptive poll learnt from the long UNINITIALIZED sleep before it (which set it to 0). Not for other INITs: a
        // storm's random INITs need not be followed by a SIPI, and polls there only took CPU from the senders.
        bool expectSipi = _expectSipi;
        _expectSipi = false;
        if (expectSipi && MpState == MpState.InitReceived && PollForInit()) return;
        if (_haltPollNs > 0 && HaltPollMaxNs > 0 && !skip)
        {
            long pollEnd = pollStart + _haltPollNs * Stopwatch.Frequency / 1_000_000_000;
            while (Stopwatch.GetTimestamp() < pollEnd)
            {
                if (Vm.StopRequested || Volatile.Read(ref _requests) != 0 || Runnable()) { HaltPollHits++; return; }
                // Yield, not spin: the thread that will send the awaited event (the BSP between INIT and SIPI) is often
                // runnable on this very host CPU, having just woken us there; spinning kept it off the CPU for the whole
                // window, and the SIPI then needed a second wake-up.
                Thread.Yield();
            }
        }
        BlockAndSleep();
        long waitedNs = (Stopwatch.GetTimestamp() - pollStart) * 1_000_000_000 / Stopwatch.Frequency;
        if (waitedNs <= HaltPollMaxNs) _haltPollNs = Math.Min(HaltPollMaxNs, Math.Max(HaltPollStartNs, _haltPollNs * 2));
        else _haltPollNs = 0;
    }

    // Bring-up poll: when an AP first halts after its SIPI (it is online), the vCPU after it, if still UNINITIALIZED, is
    // woken to poll for its own INIT for a while, on the host CPU the halting AP just gave up. PERF: APs come up in
    // order, and the INIT for the next one follows within microseconds; a sleeping AP thread then needed a futex wake
    // on an idle host CPU (10-14 us on this Firecracker host, most of a 22 us bring-up). Nothing guest-visible changes:
    // the vCPU only looks at its requests sooner, and sleeps again when the poll ends empty.
    const long BringUpPollNs = 200_000;
    int _bringUpPoll;
    public long BringUpPolls, BringUpPollHits;

    /// <summary>Asks this vCPU, if it is UNINITIALIZED, to poll for an INIT for a while (any thread); false if it is not.</summary>
    internal bool ExpectInit()
    {
        if (MpState != MpState.Uninitialized || Vm.Deterministic) return false;
        Volatile.Write(ref _bringUpPoll, 1);
        if (Volatile.Read(ref _sleeping) != 0) _wake.Set();
        return true;
    }

    bool _expectSipi;

    // The AP that just woke the next one for its INIT sleeps at once: its own halt poll would take the host CPU the
    // next AP polls and then runs its trampoline on.
    bool _skipHaltPoll;

    /// <summary>Yields the host CPU in a loop until a request or event arrives (true) or the poll's time is up (false).</summary>
    bool PollForInit()
    {
        BringUpPolls++;
        long end = Stopwatch.GetTimestamp() + BringUpPollNs * Stopwatch.Frequency / 1_000_000_000;
        while (Stopwatch.GetTimestamp() < end)
        {
            if (Vm.StopRequested || Volatile.Read(ref _requests) != 0 || Runnable()) { BringUpPollHits++; return true; }
            Thread.Yield();
        }
        return false;
    }

    void BlockAndSleep()
    {
        BlockedWaits++;
        _wake.Reset();
        Volatile.Write(ref _sleeping, 1);
        Interlocked.MemoryBarrier();
        while (!Vm.StopRequested && Volatile.Read(ref _requests) == 0 && !Runnable())
        {
            long now = Core.ClockNow();
            Apic.PollTimer(now);
            if (Runnable()) break;
            long next = Apic.NextTimerEvent(now);
            int timeoutMs = next == long.MaxValue ? Timeout.Infinite
                : (int)Math.Clamp((next - now) * 1000 / Core.Clock.Frequency + 1, 1, int.MaxValue);
            _wake.Wait(timeoutMs);
            _wake.Reset();
            if (Interlocked.Exchange(ref _bringUpPoll, 0) != 0)
            {
                if (PollForInit()) { _expectSipi = true; break; }
                continue; // nothing came: sleep again, with no spurious KVM_RUN return
            }
            if (timeoutMs == Timeout.Infinite || Volatile.Read(ref _requests) != 0) break;
        }
        Volatile.Write(ref _sleeping, 0);
        // Clear a kick meant to pull us out of guest code that we were not in.
        Interlocked.And(ref Core.State->ExitRequest, ~ExitRequestBits.Stop);
    }

    /// <summary>kvm_apic_accept_events: INIT first (reset; INIT_RECEIVED, or RUNNABLE on a BSP), then SIPI
    /// (starts the vCPU only in INIT_RECEIVED; otherwise it is cleared and dropped).</summary>
    internal void AcceptEvents()
    {
        if (Apic.Pending.Bits == 0) return;
        var counts = Apic.Counts;
        if (Apic.Pending.TakeInit())
        {
            long latency = Core.ClockNow() - Volatile.Read(ref counts.InitLatchedAt);
            Core.Reset(initEvent: true);
            bool bsp = Apic.IsBsp;
            Apic.Reset(initEvent: true, resetBsp: IsResetBsp);
            Core.State->ApicBase = Apic.ApicBase;
            InitResets++;
            counts.InitAccepted++;
            StartedAt = 0; FirstHaltAfterStart = 0;
            Observer?.OnInitSipiAccepted(this, sipi: false, latency);
            if (bsp && _broken != Storm.BrokenRule.InitBspAsAp) SetMpState(MpState.Runnable, KvmPath.InitAcceptedBsp);
            else SetMpState(MpState.InitReceived, KvmPath.InitAccepted);
        }
        if (Apic.Pending.TakeSipi(out byte vector))
        {
            if (MpState == MpState.InitReceived || (_broken == Storm.BrokenRule.AcceptSecondSipi && MpState == MpState.Runnable))
            {
                long latency = Core.ClockNow() - Volatile.Read(ref counts.SipiLatchedAt);
                Core.StartAtSipi(vector);
                SipiStarts++;
                counts.SipiAccepted++;
                StartedAt = Core.ClockNow();
                FirstHaltAfterStart = 0;
                var from = MpState;
                Volatile.Write(ref _mpState, (int)MpState.Runnable);
                Trace.Record(KvmPath.SipiAccepted, Id, Id, 0x600u | vector, 0, from, MpState.Runnable);
                Observer?.OnInitSipiAccepted(this, sipi: true, latency);
                Observer?.OnMpState(this, KvmPath.SipiAccepted, from, MpState.Runnable);
            }
            else
            {
                SipiDrops++;
                counts.SipiDropped++;
                Trace.Record(KvmPath.SipiDropped, Id, Id, 0x600u | vector, 0, MpState, MpState);
                Observer?.OnMpState(this, KvmPath.SipiDropped, MpState, MpState);
            }
        }
    }

    // ---- host-side state access (KVM_GET/SET_MP_STATE); only while the vCPU is not running ------

    /// <summary>KVM_GET_MP_STATE: accepts pending events first (so it consumes them), never reports SIPI_RECEIVED.</summary>
    public MpState GetMpState()
    {
        AcceptEvents();
        return MpState == MpState.Halted && Volatile.Read(ref _pvUnhalted) != 0 ? MpState.Runnable : MpState;
    }

    // ---- KVM's paravirtual interface (KvmParavirt) ----------------------------------------------------

    // pv_unhalted: a PV unhalt kick (remote-read delivery) is pending. It makes the vCPU runnable, even halted with IF=0,
    // and is cleared when the vCPU becomes RUNNABLE or a HLT completes as a no-op (kvm-semantics.md, the run loop).
    int _pvUnhalted;

    /// <summary>Sets pv_unhalted (any thread; the caller then kicks the vCPU).</summary>
    internal void SetPvUnhalted() => Volatile.Write(ref _pvUnhalted, 1);

    /// <summary>A PV unhalt kick is pending (for tests and the trace).</summary>
    public bool PvUnhalted => Volatile.Read(ref _pvUnhalted) != 0;

    // KVM's hypercall ABI (Documentation/virt/kvm/x86/hypercalls.rst): the number in RAX, arguments in RBX, RCX, RDX and
    // RSI, the result in RAX; all truncated to 32 bits outside 64-bit mode. KVM answers at any CPL, -KVM_EPERM above 0.
    public const ulong KvmHcVapicPollIrq = 1, KvmHcKickCpu = 5;
    public const long KvmEperm = 1, KvmEnosys = 1000;

    /// <summary>VMCALL/VMMCALL (kvm_emulate_hypercall): KVM_HC_KICK_CPU kicks the vCPU with APIC ID RCX out of its halt;
    /// KVM_HC_VAPIC_POLL_IRQ does nothing; any other number is -KVM_ENOSYS.</summary>
    ulong Hypercall()
    {
        CpuState* s = Core.State;
        bool op64 = (s->Mode & ExecMode.SizeMask) == ExecMode.Code64;
        ulong nr = op64 ? s->Gpr[0] : (uint)s->Gpr[0];
        long ret;
        if (s->Cpl != 0) ret = -KvmEperm;
        else if (nr == KvmHcKickCpu) { Vm.KickCpu(this, (uint)s->Gpr[1]); ret = 0; }
        else if (nr == KvmHcVapicPollIrq) ret = 0;
        else ret = -KvmEnosys;
        return op64 ? (ulong)ret : (uint)ret;
    }

    /// <summary>KVM_SET_MP_STATE: SIPI_RECEIVED becomes INIT_RECEIVED plus a pending SIPI with the stored vector.
    /// No register changes.</summary>
    public void SetMpState(MpState state)
    {
        if (state == MpState.SipiReceived)
        {
            SetMpState(MpState.InitReceived, KvmPath.SetMpState);
            Interlocked.Increment(ref Apic.Counts.SipiPosted);
            if ((Apic.Pending.SetSipiBit() & PendingEvents.Sipi) != 0) Interlocked.Increment(ref Apic.Counts.SipiCoalesced);
            else Volatile.Write(ref Apic.Counts.SipiLatchedAt, Core.ClockNow());
        }
        else if (state is MpState.Runnable or MpState.Uninitialized or MpState.InitReceived or MpState.Halted)
            SetMpState(state, KvmPath.SetMpState);
        else throw new ArgumentException($"mp_state {state} is not valid on x86", nameof(state));
        Interlocked.Or(ref _requests, ReqEvent);
    }

    // ---- MSRs the machine owns ---------------------------------------------------------------------

    ulong _kvmSystemTime, _kvmWallClock;

    ulong? ReadMsr(uint msr)
    {
        switch (msr)
        {
            case 0x1B: return Apic.ApicBase;
            case 0x6E0: return Apic.TscDeadline;
            case KvmClock.SystemTimeMsr when Vm.Config.KvmParavirt: return _kvmSystemTime;
            case KvmClock.WallClockMsr when Vm.Config.KvmParavirt: return _kvmWallClock;
            case >= 0x800 and <= 0x8FF: return Apic.ReadX2ApicMsr(msr);
        }
        return null;
    }

    bool WriteMsr(uint msr, ulong value)
    {
        switch (msr)
        {
            case 0x1B:
                Apic.WriteApicBase(value);
                Core.State->ApicBase = Apic.ApicBase;
                return true;
            case 0x6E0:
                Apic.TscDeadline = value;
                return true;
            case KvmClock.SystemTimeMsr when Vm.Config.KvmParavirt:
                // Bit 0 enables; the record must lie in RAM (KVM ignores one that does not).
                _kvmSystemTime = value;
                if ((value & 1) != 0) KvmClock.WriteTimeInfo(Vm.Ram, value & ~1UL);
                return true;
            case KvmClock.WallClockMsr when Vm.Config.KvmParavirt:
                _kvmWallClock = value;
                KvmClock.WriteWallClock(Vm.Ram, value, Core.ReadTsc());
                return true;
            case >= 0x800 and <= 0x8FF:
                Apic.WriteX2ApicMsr(msr, value);
                return true;
        }
        return false;
    }

    internal void ThreadMain()
    {
        var allocation = new RunLoopAllocation();
        try
        {
            while (!Vm.StopRequested) { allocation.Poll(Vm); RunOnce(); }
        }
        catch (Exception e)
        {
            // A host bug must stop this VM with a clear message, not take the process down.
            if (Environment.GetEnvironmentVariable("DYNASMP_DEBUG") == "1") Console.Error.WriteLine(e);
            Vm.OnVcpuFailure(this, $"vCPU {Id}: internal error: {e.GetType().Name}: {e.Message}", VmExitKind.InternalError);
        }
        finally { allocation.Finish(Vm); }
    }

    public void Dispose()
    {
        Core.Dispose();
        _wake.Dispose();
    }
}
