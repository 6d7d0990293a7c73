using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine;

/// <summary>
/// A virtual machine: guest-physical RAM (reserved lazily), the device bus, its vCPUs and their threads,
/// IPI routing between LAPICs, and a clean stop that joins every thread.
/// </summary>
public sealed class Vm : IDisposable
{
    public VmConfig Config { get; }
    public GuestRam Ram { get; }
    public BlockCache Cache { get; }
    /// <summary>Ports and every MMIO address that is neither RAM nor a vCPU's LAPIC page.</summary>
    public IGuestBus Devices { get; }
    public Vcpu[] Vcpus { get; }
    /// <summary>RDTSC, the LAPIC timers and the trace count in this: host time, or virtual time when deterministic.</summary>
    public GuestClock Clock { get; }

    // Its bodies (vCPU run loops, or the deterministic scheduler) run on threads of its own (Prepare) or a Fleet's
    // (AttachToHostThreads); either way each runs RunBody once, and joining waits for the last to return.
    bool _hosted;
    int _bodiesLeft;
    readonly ManualResetEventSlim _bodiesDone = new(false, spinCount: 0);
    // Threads wait here until every one of them exists (see Prepare). No spinning: every vCPU thread of a fleet waits
    // here while the rest are created, and spinners starve Thread.Start.
    readonly ManualResetEventSlim _startGate = new(false, spinCount: 0);
    int _stopRequested;
    readonly ManualResetEventSlim _exited = new(false);
    // xAPIC physical-destination fast path: APIC ID -> vCPU (rebuilt when an APIC ID or mode changes).
    readonly Vcpu?[] _byApicId = new Vcpu?[256];

    public VmExitKind ExitKind { get; private set; }
    public int? ExitStatus { get; private set; }
    public string? ExitMessage { get; private set; }
    public bool Deterministic => Config.DeterministicSeed.HasValue;
    /// <summary>Turns taken by the deterministic scheduler (for replay checks).</summary>
    public long ScheduleSteps { get; private set; }

    public Vm(VmConfig config, IGuestBus? devices = null)
    {
        config.Validate();
        if (config.DeterministicSeed.HasValue) config = config with { Jit = config.Jit with { BoundedRuns = true, CompileSynchronously = true } };
        Config = config;
        Clock = config.DeterministicSeed.HasValue ? new GuestClock(virtualTime: true) : GuestClock.Host;
        Ram = new GuestRam(config.MemoryBytes, config.HugePages);
        Cache = new BlockCache(Ram);
        Devices = devices ?? EmptyBus.Instance;
        Vcpus = new Vcpu[config.Vcpus];
        for (int k = 0; k < Vcpus.Length; k++) Vcpus[k] = new Vcpu(this, k);
        // One power-on for the whole machine: every TSC counts from the same instant, as KVM matches the TSC offsets of
        // vCPUs created together. Each vCPU's RESET took its own timestamp, and Linux measured the difference between
        // them (0.9 ms for 4 vCPUs) as TSC warp and dropped the TSC.
        unsafe { foreach (var v in Vcpus) v.Core.State->TscOffset = Vcpus[0].Core.State->TscOffset; }
        OnApicBaseChanged();
    }

    public bool StopRequested => Volatile.Read(ref _stopRequested) != 0;

    /// <summary>Creates and starts the vCPU threads (or the deterministic scheduler thread), which wait at the start gate until <see cref="Start"/>. A fleet
    /// prepares every VM before it starts any: a Thread.Start waits until the new thread runs, and behind a few hundred
    /// running vCPUs on 2 cores that wait was a scheduler slice each (64 x 16 vCPUs: 1.7 s of a 2 s run).</summary>
    public void Prepare()
    {
        AttachToHostThreads();
        var threads = new Thread[BodyCount];
        for (int k = 0; k < threads.Length; k++)
        {
            int body = k;
            threads[k] = new Thread(() => RunBody(body), Config.ThreadStackBytes)
                { IsBackground = true, Name = Deterministic ? "DynaSmp deterministic VM" : $"DynaSmp vCPU {k}" };
        }
        foreach (var t in threads) t.Start();
    }

    /// <summary>Runs the vCPUs (preparing them first if <see cref="Prepare"/> was not called).</summary>
    public void Start()
    {
        if (_startGate.IsSet) throw new InvalidOperationException("the VM was already started");
        if (!_hosted) Prepare();
        StartedAt = ClockNow;
        _startGate.Set();
    }

    /// <summary>How many host threads run this VM: one per vCPU, or one for the deterministic scheduler.</summary>
    public int BodyCount => Deterministic ? 1 : Vcpus.Length;

    /// <summary>Instead of <see cref="Prepare"/>'s own threads, the caller's (a <see cref="Fleet"/>'s) will each call
    /// <see cref="RunBody"/> once per body, and <see cref="Join"/> waits for those calls to return.</summary>
    internal void AttachToHostThreads()
    {
        if (_hosted) throw new InvalidOperationException("the VM was already prepared or started");
        _bodiesLeft = BodyCount;
        _hosted = true;
    }

    /// <summary>Runs body <paramref name="k"/> (vCPU k, or the deterministic scheduler) on the calling thread, from the
    /// start gate to the VM's stop.</summary>
    internal void RunBody(int k)
    {
        try { Gated(Deterministic ? RunDeterministic : Vcpus[k].ThreadMain); }
        finally { if (Interlocked.Decrement(ref _bodiesLeft) == 0) _bodiesDone.Set(); }
    }

    void Gated(Action body)
    {
        if (Config.LowerVcpuPriority) Host.HostScheduling.LowerCurrentThread(Host.HostScheduling.VcpuNice);
        _startGate.Wait();
        body();
    }

    /// <summary>Asks every vCPU to stop; the first reason wins.</summary>
    public void Stop(VmExitKind kind = VmExitKind.Stopped, string? message = null, int? status = null)
    {
        lock (_exited)
        {
            if (ExitKind == VmExitKind.None)
            {
                ExitKind = kind;
                ExitMessage = message;
                ExitStatus = status;
            }
        }
        Volatile.Write(ref _stopRequested, 1);
        foreach (var v in Vcpus) v.Kick();
        _exited.Set();
    }

    /// <summary>Stops with QEMU's isa-debug-exit status: (value &lt;&lt; 1) | 1.</summary>
    public void DebugExit(uint value) => Stop(VmExitKind.DebugExit, $"isa-debug-exit value {value}", (int)((value << 1) | 1));

    /// <summary>The first dying vCPU's report (triple fault or unsupported feature), if any.</summary>
    public GuestDiagnosis? Diagnosis { get; private set; }

    internal void RecordDiagnosis(GuestDiagnosis d)
    {
        lock (_exited) { if (Diagnosis == null && ExitKind == VmExitKind.None) Diagnosis = d; }
    }

    internal void OnVcpuFailure(Vcpu v, string message, VmExitKind kind) => Stop(kind, message);

    /// <summary>Waits until the VM stops (any reason). False on timeout (the VM keeps running).</summary>
    public bool WaitForExit(TimeSpan timeout) => _exited.Wait(timeout);

    /// <summary>Stops (if needed) and joins every thread.</summary>
    public void Join() => Join(Timeout.InfiniteTimeSpan);

    /// <summary>Stops (if needed) and waits until <paramref name="timeout"/> for every body to return; false if some is
    /// still running then (the VM must then not be disposed: its threads still use its memory).</summary>
    public bool Join(TimeSpan timeout)
    {
        if (!StopRequested) Stop();
        return !_hosted || _bodiesDone.Wait(timeout);
    }

    /// <summary>Every body of this VM has returned (or none was started).</summary>
    public bool Joined => !_hosted || _bodiesDone.IsSet;

    // ---- IPI routing ---------------------------------------------------------------------------------

    /// <summary>kvm_apic_send_ipi -> kvm_irq_delivery_to_apic, on the sender's thread: decode, route, latch at
    /// each target's LAPIC, kick. No lock; each step is recorded in the sender's trace ring.</summary>
    internal void SendIpi(Vcpu src, IcrWrite icr)
    {
        src.IpisSent[icr.IsInitDeassert ? 8 : (int)icr.Mode]++;
        Send(src, icr, KvmPath.IpiSent);
    }

    /// <summary>An APIC message from <paramref name="src"/> (an ICR write or a hypercall's, recorded as
    /// <paramref name="sent"/>): counted, traced and routed; a message that reached no APIC is traced as such.</summary>
    void Send(Vcpu src, in IcrWrite icr, KvmPath sent)
    {
        src.Stats.IpiSent[(int)icr.Mode]++;
        src.Trace.Record(sent, src.Id, -1, icr.Low, icr.Destination, src.MpState, src.MpState);
        if (Route(src, icr) == 0) src.Trace.Record(KvmPath.NoDestination, src.Id, -1, icr.Low, icr.Destination, src.MpState, src.MpState);
    }

    /// <summary>KVM_HC_KICK_CPU (kvm_pv_kick_cpu_op): an APIC message in the remote-read delivery mode, which KVM reuses as
    /// the PV unhalt kick, to physical APIC ID <paramref name="apicId"/>. Routed and counted as an IPI; no ICR changes.</summary>
    internal void KickCpu(Vcpu src, uint apicId) => Send(src, new IcrWrite((uint)DeliveryMode.RemoteRead << 8, apicId), KvmPath.PvKickSent);

    /// <summary>A VMM's injection with no sending vCPU (KVM_NMI, KVM_SIGNAL_MSI, an INIT/SIPI from userspace): routed
    /// to <paramref name="target"/>'s LAPIC as an IPI would be. Any thread. Recorded in the target's ring when the
    /// VM is deterministic (single thread), else in the caller's <paramref name="log"/>.</summary>
    public KvmPath HostDeliver(Vcpu target, IcrWrite icr, EventTrace log)
    {
        var before = target.MpState;
        var path = target.Apic.AcceptIrq(icr, out bool kick);
        log.Record(KvmPath.HostInjected, -1, target.Id, icr.Low, icr.Destination, before, before);
        log.Record(path, -1, target.Id, icr.Low, icr.Destination, before, before);
        if (kick) target.RequestEvent();
        return path;
    }

    /// <summary>Delivers to every destination; returns how many APICs the message reached. Shared by IPIs (src = the
    /// sending vCPU) and device interrupts (src = null: no shorthand, no trace).</summary>
    int Route(Vcpu? src, in IcrWrite icr)
    {
        int reached = 0;
        switch (icr.Shorthand)
        {
            case DestinationShorthand.Self:
                if (src == null) return 0;
                Deliver(src, src, icr);
                return 1;
            case DestinationShorthand.AllIncludingSelf:
            case DestinationShorthand.AllExcludingSelf:
                foreach (var v in Vcpus)
                    if (v.Apic.HardwareEnabled && (icr.Shorthand == DestinationShorthand.AllIncludingSelf || v != src)) { Deliver(src, v, icr); reached++; }
                return reached;
        }
        bool broadcast = icr.Destination == 0xFF || icr.Destination == 0xFFFF_FFFF;
        if (icr.Mode == DeliveryMode.LowestPriority && !broadcast)
        {
            // Vector hashing (KVM's default): the (vector mod N)-th software-enabled match.
            int n = 0;
            foreach (var v in Vcpus) if (IsTarget(v, icr) && v.Apic.SoftwareEnabled) n++;
            if (n == 0) return 0;
            int pick = icr.Vector % n;
            foreach (var v in Vcpus)
                if (IsTarget(v, icr) && v.Apic.SoftwareEnabled && pick-- == 0) { Deliver(src, v, icr); return 1; }
            return 0;
        }
        if (!icr.Logical && !broadcast && icr.Destination < 0xFF && !Config.X2Apic)
        {
            var target = _byApicId[icr.Destination];
            if (target != null && target.Apic.HardwareEnabled && target.Apic.Id == icr.Destination) { Deliver(src, target, icr); return 1; }
            return 0;
        }
        foreach (var v in Vcpus) if (IsTarget(v, icr)) { Deliver(src, v, icr); reached++; }
        return reached;
    }

    /// <summary>The interrupt-delivery entry point for devices (IOAPIC redirection entries, MSI later): an APIC-bus
    /// message with no sending vCPU (kvm_irq_delivery_to_apic with src = NULL). Callable from any thread; routed
    /// and latched exactly as an IPI with no shorthand.</summary>
    public void DeliverInterrupt(in ApicMessage message) => Route(null, new IcrWrite(message.IcrLow, message.Destination));

    /// <summary>Level-triggered interrupts end with an EOI broadcast to the IOAPICs (kvm_ioapic_update_eoi):
    /// the LAPIC calls this when the vector it retires had its TMR bit set.</summary>
    public event Action<int>? LevelEoi;

    internal void BroadcastEoi(int vector) => LevelEoi?.Invoke(vector);

    static bool IsTarget(Vcpu v, in IcrWrite icr) => v.Apic.HardwareEnabled && v.Apic.MatchesDestination(icr.Logical, icr.Destination);

    void Deliver(Vcpu? src, Vcpu target, in IcrWrite icr)
    {
        Interlocked.Increment(ref target.Stats.IpiReceived[(int)icr.Mode]);
        if (icr.Mode == DeliveryMode.Init && !icr.IsInitDeassert && target.Stats.FirstInitAt == 0)
        {
            // The first INIT assert to reach an AP starts its bring-up clock (BootRun's host-time figure counts the same).
            target.Stats.FirstInitVmInstructions = RetiredInstructions();
            target.Stats.FirstInitAt = src?.Core.ClockNow() ?? ClockNow;
        }
        var before = target.MpState;
        var path = target.Apic.AcceptIrq(icr, out bool kick);
        src?.Trace.Record(path, src.Id, target.Id, icr.Low, icr.Destination, before, before);
        if (kick) target.RequestEvent();
    }

    /// <summary>Guest instructions every vCPU of this VM has retired (as each core last published its count). In
    /// deterministic mode one thread runs them all, so this is an exact instruction-count clock.</summary>
    public ulong RetiredInstructions()
    {
        ulong n = 0;
        foreach (var v in Vcpus) n += v.Retired;
        return n;
    }

    /// <summary>The VM clock between scheduler turns (<see cref="Clock"/>; vCPUs read theirs through CpuCore.ClockNow).</summary>
    public long ClockNow => Clock.Now;
    /// <summary><see cref="ClockNow"/> when <see cref="Start"/> opened the vCPUs' start gate.</summary>
    public long StartedAt { get; private set; }

    readonly Vcpu?[] _apicMapScratch = new Vcpu?[256];

    // Rebuilt in place (a storm toggles xAPIC/x2APIC thousands of times a second: a new map each time was most of its
    // allocation). Senders read entries lock-free; each entry changes atomically, as if the MSR write raced the IPI.
    internal void OnApicBaseChanged()
    {
        lock (_apicMapScratch)
        {
            var scratch = _apicMapScratch;
            Array.Clear(scratch);
            foreach (var v in Vcpus)
                if (v != null && v.Apic.Id < 256 && !v.Apic.X2ApicMode) scratch[v.Apic.Id] = v;
            var map = _byApicId;
            for (int k = 0; k < 256; k++)
                if (!ReferenceEquals(map[k], scratch[k])) Volatile.Write(ref map[k], scratch[k]);
        }
    }

    // ---- deterministic scheduling -----------------------------------------------------------------

    /// <summary>Virtual nanoseconds a scheduler turn costs on top of the instructions it retired (1 ns each), so
    /// turns that run no guest code (a vCPU accepting an event, a yield) still move time.</summary>
    public const long TurnCostNs = 100;

    /// <summary>All vCPUs on this one thread; each turn a seeded PRNG picks a vCPU that can make progress and
    /// runs it for a bounded number of guest instructions. Same seed, same guest, same interleaving. Time is virtual
    /// (<see cref="Clock"/>): each turn advances it; when no vCPU can run it skips to the earliest LAPIC timer.</summary>
    void RunDeterministic()
    {
        var rng = new Random(Config.DeterministicSeed!.Value);
        var candidates = new int[Vcpus.Length];
        var allocation = new RunLoopAllocation();
        try
        {
            while (!StopRequested)
            {
                allocation.Poll(this);
                int n = 0;
                for (int k = 0; k < Vcpus.Length; k++)
                {
                    var c = Vcpus[k];
                    if (c.MpState != MpState.Runnable) c.Apic.PollTimer(Clock.Now);
                    if (c.CanProgress) candidates[n++] = k;
                }
                if (n == 0)
                {
                    long next = long.MaxValue;
                    foreach (var c in Vcpus) next = Math.Min(next, c.Apic.NextTimerEvent(Clock.Now));
                    if (next != long.MaxValue) { Clock.AdvanceTo(next); continue; }
                    Stop(VmExitKind.Stopped, "deterministic run: every vCPU is blocked (deadlock or all halted)");
                    break;
                }
                var v = Vcpus[candidates[rng.Next(n)]];
                ScheduleSteps++;
                v.RunOnce();
                Clock.Advance(v.Core.EndTurn() + TurnCostNs);
                AfterTurn?.Invoke(v);
            }
        }
        catch (Exception e)
        {
            Stop(VmExitKind.InternalError, $"deterministic scheduler: {e.GetType().Name}: {e.Message}");
        }
        finally { allocation.Finish(this); }
    }

    // ---- steady-state allocation -------------------------------------------------------------------

    internal int SteadyStateMark;
    long _runLoopAllocated;

    /// <summary>Starts the steady-state window: each run-loop thread (vCPU or scheduler) samples its own allocation
    /// count at its next loop turn and charges what it allocated outside translation when it ends.</summary>
    public void MarkSteadyState() => Interlocked.Increment(ref SteadyStateMark);

    /// <summary>Bytes the VM's run-loop threads allocated after <see cref="MarkSteadyState"/>, translation excluded.
    /// Exact (per-thread counters), and complete once <see cref="Join()"/> has returned.</summary>
    public long RunLoopAllocatedBytes => Volatile.Read(ref _runLoopAllocated);

    internal void ChargeRunLoop(long bytes) => Interlocked.Add(ref _runLoopAllocated, bytes);

    /// <summary>Deterministic mode only: called on the scheduler thread after every turn (checkers and host-side
    /// injectors that must act at reproducible points). Null costs one test per turn.</summary>
    public Action<Vcpu>? AfterTurn { get; set; }

    public void Dispose()
    {
        Join();
        _startGate.Dispose();
        foreach (var v in Vcpus) v.Dispose();
        Ram.Dispose();
        _exited.Dispose();
        _bodiesDone.Dispose();
    }
}
