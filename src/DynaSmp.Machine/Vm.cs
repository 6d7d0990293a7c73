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

    Thread[]? _threads;
    // Threads wait here until every one of them exists: Thread.Start waits for the new thread to be scheduled,
    // which behind hundreds of already spinning vCPUs on two cores took seconds per thread.
    readonly ManualResetEventSlim _startGate = new(false);
    int _stopRequested;
    readonly ManualResetEventSlim _exited = new(false);
    // xAPIC physical-destination fast path: APIC ID -> vCPU (rebuilt when an APIC ID or mode changes).
    Vcpu?[] _byApicId = new Vcpu?[256];

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
        Ram = new GuestRam(config.MemoryBytes);
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

    /// <summary>Starts the vCPU threads (or the deterministic scheduler thread).</summary>
    public void Start()
    {
        if (_threads != null) throw new InvalidOperationException("the VM was already started");
        if (Deterministic)
        {
            _threads = [new Thread(() => Gated(RunDeterministic), Config.ThreadStackBytes) { IsBackground = true, Name = "DynaSmp deterministic VM" }];
        }
        else
        {
            _threads = new Thread[Vcpus.Length];
            for (int k = 0; k < Vcpus.Length; k++)
            {
                var v = Vcpus[k];
                _threads[k] = new Thread(() => Gated(v.ThreadMain), Config.ThreadStackBytes) { IsBackground = true, Name = $"DynaSmp vCPU {k}" };
            }
        }
        foreach (var t in _threads) t.Start();
        _startGate.Set();
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

    /// <summary>Stops (if needed) and joins every thread until <paramref name="timeout"/>; false if some thread
    /// is still running then (the VM must then not be disposed: its threads still use its memory).</summary>
    public bool Join(TimeSpan timeout)
    {
        if (!StopRequested) Stop();
        if (_threads == null) return true;
        long end = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue
            : System.Diagnostics.Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        foreach (var t in _threads)
        {
            if (end == long.MaxValue) { t.Join(); continue; }
            long left = end - System.Diagnostics.Stopwatch.GetTimestamp();
            if (!t.Join(TimeSpan.FromSeconds(Math.Max(0, left) / (double)System.Diagnostics.Stopwatch.Frequency))) return false;
        }
        return true;
    }

    /// <summary>Every thread of this VM has ended (or none was started).</summary>
    public bool Joined => _threads == null || Array.TrueForAll(_threads, t => !t.IsAlive);

    // ---- IPI routing ---------------------------------------------------------------------------------

    /// <summary>kvm_apic_send_ipi -> kvm_irq_delivery_to_apic, on the sender's thread: decode, route, latch at
    /// each target's LAPIC, kick. No lock; each step is recorded in the sender's trace ring.</summary>
    internal void SendIpi(Vcpu src, IcrWrite icr)
    {
        src.Trace.Record(KvmPath.IpiSent, src.Id, -1, icr.Low, icr.Destination, src.MpState, src.MpState);
        Route(src, icr);
    }

    // Routing shared by IPIs (src = the sending vCPU) and device interrupts (src = null: no shorthand, no trace).
    void Route(Vcpu? src, in IcrWrite icr)
    {
        switch (icr.Shorthand)
        {
            case DestinationShorthand.Self:
                if (src != null) Deliver(src, src, icr);
                return;
            case DestinationShorthand.AllIncludingSelf:
            case DestinationShorthand.AllExcludingSelf:
                foreach (var v in Vcpus)
                    if (v.Apic.HardwareEnabled && (icr.Shorthand == DestinationShorthand.AllIncludingSelf || v != src)) Deliver(src, v, icr);
                return;
        }
        bool broadcast = icr.Destination == 0xFF || icr.Destination == 0xFFFF_FFFF;
        if (icr.Mode == DeliveryMode.LowestPriority && !broadcast)
        {
            // Vector hashing (KVM's default): the (vector mod N)-th software-enabled match.
            int n = 0;
            foreach (var v in Vcpus) if (IsTarget(v, icr) && v.Apic.SoftwareEnabled) n++;
            if (n == 0) return;
            int pick = icr.Vector % n;
            foreach (var v in Vcpus)
                if (IsTarget(v, icr) && v.Apic.SoftwareEnabled && pick-- == 0) { Deliver(src, v, icr); return; }
            return;
        }
        if (!icr.Logical && !broadcast && icr.Destination < 0xFF && !Config.X2Apic)
        {
            var target = _byApicId[icr.Destination];
            if (target != null && target.Apic.HardwareEnabled && target.Apic.Id == icr.Destination) Deliver(src, target, icr);
            return;
        }
        foreach (var v in Vcpus) if (IsTarget(v, icr)) Deliver(src, v, icr);
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

    static void Deliver(Vcpu? src, Vcpu target, in IcrWrite icr)
    {
        var before = target.MpState;
        var path = target.Apic.AcceptIrq(icr, out bool kick);
        src?.Trace.Record(path, src.Id, target.Id, icr.Low, icr.Destination, before, before);
        if (kick) target.RequestEvent();
    }

    internal void OnApicBaseChanged()
    {
        var map = new Vcpu?[256];
        foreach (var v in Vcpus)
            if (v.Apic.Id < 256 && !v.Apic.X2ApicMode) map[v.Apic.Id] = v;
        Volatile.Write(ref _byApicId, map);
    }

    // ---- deterministic scheduling -----------------------------------------------------------------

    /// <summary>All vCPUs on this one thread; each turn a seeded PRNG picks a vCPU that can make progress and
    /// runs it for a bounded number of guest instructions. Same seed, same guest, same interleaving.</summary>
    void RunDeterministic()
    {
        var rng = new Random(Config.DeterministicSeed!.Value);
        var candidates = new int[Vcpus.Length];
        try
        {
            while (!StopRequested)
            {
                int n = 0;
                for (int k = 0; k < Vcpus.Length; k++) if (Vcpus[k].CanProgress) candidates[n++] = k;
                if (n == 0) { Stop(VmExitKind.Stopped, "deterministic run: every vCPU is blocked (deadlock or all halted)"); break; }
                var v = Vcpus[candidates[rng.Next(n)]];
                ScheduleSteps++;
                v.RunOnce();
            }
        }
        catch (Exception e)
        {
            Stop(VmExitKind.InternalError, $"deterministic scheduler: {e.GetType().Name}: {e.Message}");
        }
    }

    public void Dispose()
    {
        Join();
        _startGate.Dispose();
        foreach (var v in Vcpus) v.Dispose();
        Ram.Dispose();
        _exited.Dispose();
    }
}
