using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine.Storm;

/// <summary>The first broken invariant of a storm VM: which rule, what was seen, and when (events sent so far).</summary>
public sealed record StormViolation(string Invariant, string Detail, long AtEvent, int Vcpu);

/// <summary>
/// The storm's continuous invariants for one VM (kvm-semantics.md), fed by <see cref="IVcpuObserver"/> callbacks on the
/// thread that causes each transition and by <see cref="CheckAll"/> between deterministic turns / after a free run:
/// allowed mp_state transitions; a SIPI starts a vCPU at most once per accepted INIT; every INIT/SIPI/NMI/fixed event is
/// accounted for by a named rule; no pending INIT/SIPI/NMI waits on a vCPU that is not being run; guest check-ins never
/// exceed the starts the host performed. The first violation wins and stops the VM.
/// </summary>
public sealed class StormChecker : IVcpuObserver
{
    readonly Vm _vm;
    readonly bool[] _armed;           // an INIT (or SET_MP_STATE INIT_RECEIVED) was accepted since the last start
    readonly long[] _starts;          // host view: starts (SIPI, BSP power-on, host BSP reset)
    readonly long[] _pendingSince;    // watchdog: deterministic turn at which a wake event was first seen pending
    StormViolation? _violation;
    public readonly LatencyHistogram InitLatency = new(), SipiLatency = new(), FixedLatency = new();
    public Func<long> EventsSoFar { get; set; } = () => 0;
    /// <summary>Turns a vCPU may go unscheduled with a wake event pending before the watchdog fires (deterministic).</summary>
    public long WatchdogTurns { get; }

    public StormChecker(Vm vm)
    {
        _vm = vm;
        int n = vm.Vcpus.Length;
        _armed = new bool[n];
        _starts = new long[n];
        _pendingSince = new long[n];
        Array.Fill(_pendingSince, -1);
        _starts[vm.Config.BspId] = 1; // the BSP's power-on start
        WatchdogTurns = 200L * n + 2000;
        foreach (var v in vm.Vcpus) v.Observer = this;
    }

    public StormViolation? Violation => Volatile.Read(ref _violation);
    public long Starts(int vcpu) => Volatile.Read(ref _starts[vcpu]);

    /// <summary>The host restarted the BSP at the trampoline after an INIT (a VMM's KVM_SET_REGS): one more start.</summary>
    public void OnHostStart(int vcpu) => Interlocked.Increment(ref _starts[vcpu]);

    public void Violate(string invariant, string detail, int vcpu)
    {
        if (Interlocked.CompareExchange(ref _violation, new StormViolation(invariant, detail, EventsSoFar(), vcpu), null) == null)
            _vm.Stop(VmExitKind.Stopped, $"storm invariant violated: {invariant}");
    }

    public void OnMpState(Vcpu v, KvmPath path, MpState from, MpState to)
    {
        int id = v.Id;
        bool bsp = id == _vm.Config.BspId;
        // The detail text is built only for a violation: this runs on every mp_state change of a storm.
        string T() => $"vCPU {id}: {path} {TraceText.MpStateName(from)} -> {TraceText.MpStateName(to)}";
        switch (path)
        {
            case KvmPath.InitAccepted:
                if (bsp) Violate("INIT on the BSP leaves it RUNNABLE at the reset vector", T(), id);
                else if (to != MpState.InitReceived) Violate("mp_state transition allowed by kvm-semantics.md", T(), id);
                _armed[id] = true;
                break;
            case KvmPath.InitAcceptedBsp:
                if (!bsp || to != MpState.Runnable) Violate("mp_state transition allowed by kvm-semantics.md", T(), id);
                _armed[id] = false;
                break;
            case KvmPath.SipiAccepted:
                if (from != MpState.InitReceived || to != MpState.Runnable) Violate("a SIPI is accepted only in INIT_RECEIVED", T(), id);
                else if (!_armed[id]) Violate("a SIPI starts a vCPU at most once per accepted INIT", T(), id);
                _armed[id] = false;
                Interlocked.Increment(ref _starts[id]);
                break;
            case KvmPath.SipiDropped:
                if (from == MpState.InitReceived) Violate("a SIPI in INIT_RECEIVED starts the vCPU (not dropped)", T(), id);
                break;
            case KvmPath.Halted:
                if (from != MpState.Runnable || to != MpState.Halted) Violate("mp_state transition allowed by kvm-semantics.md", T(), id);
                break;
            case KvmPath.WokeFromHalt:
                if (from != MpState.Halted || to != MpState.Runnable) Violate("mp_state transition allowed by kvm-semantics.md", T(), id);
                break;
            case KvmPath.SetMpState:
                if (to is not (MpState.Runnable or MpState.Uninitialized or MpState.InitReceived or MpState.Halted))
                    Violate("mp_state transition allowed by kvm-semantics.md", T(), id);
                if (to == MpState.InitReceived) _armed[id] = true;
                else if (from is MpState.InitReceived or MpState.Uninitialized) _armed[id] = false;
                break;
            default:
                Violate("mp_state changes only on a path kvm-semantics.md names", T(), id);
                break;
        }
    }

    public void OnInitSipiAccepted(Vcpu v, bool sipi, long latencyTicks) => (sipi ? SipiLatency : InitLatency).Record(latencyTicks);
    public void OnFixedAcknowledged(Vcpu v, long latencyTicks) => FixedLatency.Record(latencyTicks);

    /// <summary>Balances every vCPU's event accounting, checks check-ins against starts and (with
    /// <paramref name="turn"/> >= 0, deterministic) the wake-up watchdog. Exact only while no vCPU runs.</summary>
    public unsafe void CheckAll(long turn)
    {
        foreach (var v in _vm.Vcpus)
        {
            if (Violation != null) return;
            var c = v.Apic.Counts;
            int pending = v.Apic.Pending.Bits;
            int nmiPending = Volatile.Read(ref v.Core.State->NmiPending);

            if (c.InitPosted != c.InitCoalesced + c.InitAccepted + ((pending & PendingEvents.Init) != 0 ? 1 : 0))
                Violate("no INIT lost", $"vCPU {v.Id}: posted {c.InitPosted} != coalesced {c.InitCoalesced} + accepted {c.InitAccepted} + pending {pending & 1}", v.Id);
            else if (c.SipiPosted != c.SipiCoalesced + c.SipiCancelledByInit + c.SipiAccepted + c.SipiDropped + ((pending & PendingEvents.Sipi) != 0 ? 1 : 0))
                Violate("no SIPI lost", $"vCPU {v.Id}: posted {c.SipiPosted} != coalesced {c.SipiCoalesced} + cancelled by INIT {c.SipiCancelledByInit} + accepted {c.SipiAccepted} + dropped {c.SipiDropped} + pending {(pending >> 1) & 1}", v.Id);
            else if (c.NmiQueued != c.NmiCoalesced + v.Core.NmisDelivered + c.NmiClearedByReset + v.Core.NmisClearedByReset + nmiPending)
                Violate("no NMI lost", $"vCPU {v.Id}: queued {c.NmiQueued} != coalesced {c.NmiCoalesced} + delivered {v.Core.NmisDelivered} + cleared by INIT {c.NmiClearedByReset + v.Core.NmisClearedByReset} + pending {nmiPending}", v.Id);
            else if (c.FixedLatched != c.FixedCoalesced + c.FixedAcknowledged + c.FixedClearedByReset + v.Apic.IrrCount())
                Violate("no fixed interrupt lost", $"vCPU {v.Id}: latched {c.FixedLatched} != coalesced {c.FixedCoalesced} + acknowledged {c.FixedAcknowledged} + cleared by INIT {c.FixedClearedByReset} + in IRR {v.Apic.IrrCount()}", v.Id);
            uint epoch = BitConverter.ToUInt32(_vm.Ram.Span(StormGuest.Epochs + (ulong)v.Id * 4, 4));
            if (epoch > Starts(v.Id))
                Violate("guest check-ins match the host's starts", $"vCPU {v.Id}: guest epoch {epoch} > host starts {Starts(v.Id)}", v.Id);
            if (turn < 0) continue;
            bool waiting = pending != 0 || (nmiPending != 0 && v.MpState == MpState.Halted);
            if (!waiting) _pendingSince[v.Id] = -1;
            else if (_pendingSince[v.Id] < 0) _pendingSince[v.Id] = turn;
            else if (turn - _pendingSince[v.Id] > WatchdogTurns)
                Violate("no lost wake-up (watchdog)", $"vCPU {v.Id}: {TraceText.MpStateName(v.MpState)} with INIT/SIPI bits {pending}, NMI {nmiPending} pending for {turn - _pendingSince[v.Id]} turns without running", v.Id);
        }
    }

    readonly Dictionary<int, (long Progress, long Since)> _freeWaits = new();

    /// <summary>Free-running watchdog sample (monitor thread): a vCPU that has had a wake event pending and made no
    /// progress at all for <paramref name="limitMs"/> ms is reported. Racy reads, so only long stalls count.</summary>
    public unsafe void SampleFree(long nowMs, long limitMs)
    {
        foreach (var v in _vm.Vcpus)
        {
            bool waiting = v.Apic.Pending.Bits != 0 || (Volatile.Read(ref v.Core.State->NmiPending) != 0 && v.MpState == MpState.Halted);
            long progress = (long)v.Core.State->InstructionsRetired + v.InitResets + v.SipiStarts + v.SipiDrops + v.Halts + v.Wakeups + v.AgainReturns + v.HaltNoops;
            if (!waiting || !_freeWaits.TryGetValue(v.Id, out var w) || w.Progress != progress) { _freeWaits[v.Id] = (progress, nowMs); continue; }
            if (nowMs - w.Since > limitMs)
                Violate("no lost wake-up (watchdog)", $"vCPU {v.Id}: {TraceText.MpStateName(v.MpState)} with a wake event pending and no progress for {nowMs - w.Since} ms", v.Id);
        }
    }

    /// <summary>Deterministic: the vCPU just had a turn, so whatever it had pending was looked at.</summary>
    public void Ran(Vcpu v) => _pendingSince[v.Id] = -1;
}
