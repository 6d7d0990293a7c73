using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using DynaSmp.Jit;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine.Storm;

/// <summary>What `dynasmp storm` runs: the VMs of one shard, their stop condition, and where failures go.</summary>
public sealed record StormRunOptions
{
    public StormConfig Config { get; init; } = new();
    public int ShardIndex { get; init; }
    public int ShardCount { get; init; } = 1;
    /// <summary>Only this VM index (replay); null: every VM of the shard.</summary>
    public int? OnlyVm { get; init; }
    public JitOptions Jit { get; init; } = JitOptions.Default;
    /// <summary>Directory for failure traces (text and Chrome JSON); null: not written.</summary>
    public string? FailureDirectory { get; init; }
    /// <summary>Called about once a second with a one-line status (the live progress line).</summary>
    public Action<string>? Progress { get; init; }
    /// <summary>Printed on a violation: seed, invariant, trace window.</summary>
    public TextWriter? Log { get; init; }
    /// <summary>Resident-memory ceiling from admission (0: none); passing it stops the storm with a host-resources
    /// report rather than letting the host swap or kill the process.</summary>
    public long RssCeiling { get; init; }
    internal BrokenRule BrokenRule { get; init; }
}

/// <summary>Runs a storm: builds the shard's VMs, drives the free-running host injector and watchdog, stops on the
/// first violation, budget or duration, and reports.</summary>
public static class StormRun
{
    /// <summary>The seed of VM <paramref name="vm"/> of a run: a fixed mix of the base seed and the global VM index, so
    /// any shard split runs each VM with the same seed as the unsharded run.</summary>
    public static int VmSeed(int baseSeed, int vm)
    {
        ulong x = (ulong)(uint)baseSeed * 0x9E37_79B9_7F4A_7C15UL + (ulong)vm * 0xBF58_476D_1CE4_E5B9UL + 1;
        x ^= x >> 31; x *= 0x94D0_49BB_1331_11EBUL; x ^= x >> 29;
        return (int)(x & 0x7FFF_FFFF);
    }

    public static long EventsPerVm(StormConfig c) => c.Events is long e ? (e + c.Vms - 1) / c.Vms : long.MaxValue;

    public static StormReport Run(StormRunOptions o)
    {
        var c = o.Config;
        if (o.ShardCount < 1 || o.ShardIndex < 0 || o.ShardIndex >= o.ShardCount) throw new ArgumentException($"shard {o.ShardIndex}/{o.ShardCount}: need 0 <= I < N");
        if (c.Events == null && c.DurationSeconds == null) throw new ArgumentException("a storm needs an event budget or a duration");
        var indices = new List<int>();
        for (int k = o.ShardIndex; k < c.Vms; k += o.ShardCount) if (o.OnlyVm == null || o.OnlyVm == k) indices.Add(k);
        var vms = new List<StormVm>();
        try
        {
            foreach (int k in indices)
                vms.Add(new StormVm(new StormVmOptions
                {
                    Cpus = c.Cpus, Seed = VmSeed(c.Seed, k), Deterministic = c.Deterministic, Events = EventsPerVm(c),
                    X2Apic = c.X2Apic, Jit = o.Jit, BrokenRule = o.BrokenRule,
                }));
            return Drive(o, indices, vms);
        }
        finally
        {
            foreach (var v in vms) { if (v.Vm.Join(TimeSpan.FromSeconds(30))) v.Dispose(); }
        }
    }

    static long RunLoopBytes(List<StormVm> vms)
    {
        long n = 0;
        foreach (var s in vms) n += s.Vm.RunLoopAllocatedBytes;
        return n;
    }

    static StormReport Drive(StormRunOptions o, List<int> indices, List<StormVm> vms)
    {
        var c = o.Config;
        long start = Stopwatch.GetTimestamp();
        long Ms() => (Stopwatch.GetTimestamp() - start) * 1000 / Stopwatch.Frequency;
        long durationMs = c.DurationSeconds is double d ? (long)(d * 1000) : long.MaxValue;
        foreach (var s in vms) s.Vm.Start();

        // Free-running: one host thread plays the VMM for every VM (event injection only; see StormVm.Inject).
        int stopInjector = 0, injectorMarked = 0;
        long injectorAllocated = 0;
        Thread? injector = null;
        if (!c.Deterministic)
        {
            injector = new Thread(() =>
            {
                var rng = new Random(c.Seed ^ 0x1457);
                long mine = -1;
                while (Volatile.Read(ref stopInjector) == 0)
                {
                    if (mine < 0 && Volatile.Read(ref injectorMarked) != 0) mine = GC.GetAllocatedBytesForCurrentThread();
                    foreach (var s in vms) if (!s.Vm.StopRequested) s.Inject(rng, deterministic: false);
                    Thread.Sleep(1);
                }
                if (mine >= 0) injectorAllocated = GC.GetAllocatedBytesForCurrentThread() - mine;
            }) { IsBackground = true, Name = "storm host injector" };
            injector.Start();
        }

        // Steady state: from the end of warm-up to the stop, what the storm's own threads allocated outside translation
        // (vCPU or scheduler threads, the injector, this driver loop less its progress line), counted per thread; the
        // translation share is reported beside it (TranslationCost). The first must be 0.
        long warmupMs = Math.Min(1000, durationMs / 4), translateStart = 0, driverStart = 0, reporting = 0;
        bool steady = false;
        long lastProgress = 0, lastRssCheck = 0;
        string? overCeiling = null;
        while (true)
        {
            Thread.Sleep(10);
            long now = Ms();
            bool allStopped = true, violated = false;
            foreach (var s in vms)
            {
                if (!c.Deterministic && !s.Vm.StopRequested)
                {
                    if (s.Events() >= s.Options.Events) s.Vm.Stop(VmExitKind.Stopped, "storm event budget reached");
                    else s.Checker.SampleFree(now, 5000);
                }
                if (!s.Vm.StopRequested) allStopped = false;
                if (s.Checker.Violation != null) violated = true;
            }
            if (o.RssCeiling > 0 && now - lastRssCheck >= 250)
            {
                lastRssCheck = now;
                long rss = Host.HostCapacity.ResidentBytes();
                if (rss > o.RssCeiling)
                {
                    overCeiling = $"resident memory {rss >> 20} MiB passed the admission ceiling of {o.RssCeiling >> 20} MiB";
                    break;
                }
            }
            if (!steady && now >= warmupMs)
            {
                steady = true;
                foreach (var s in vms) s.Vm.MarkSteadyState();
                Volatile.Write(ref injectorMarked, 1);
                translateStart = Jit.Translation.TranslationCost.AllocatedBytes;
                driverStart = GC.GetAllocatedBytesForCurrentThread();
            }
            if (allStopped || violated || now >= durationMs) break;
            if (o.Progress != null && now - lastProgress >= 1000)
            {
                lastProgress = now;
                long ev = 0;
                foreach (var s in vms) ev += s.Events();
                long before = GC.GetAllocatedBytesForCurrentThread();
                o.Progress($"{now / 1000.0,6:F1} s  {ev,12:N0} events  {ev / Math.Max(0.001, now / 1000.0),12:N0} events/s  0 violations");
                if (steady) reporting += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }
        long driverEnd = GC.GetAllocatedBytesForCurrentThread(), translateEnd = Jit.Translation.TranslationCost.AllocatedBytes;
        Volatile.Write(ref stopInjector, 1);
        injector?.Join();
        foreach (var s in vms) s.Vm.Stop(overCeiling != null ? VmExitKind.HostResources : VmExitKind.Stopped, overCeiling ?? "storm ended");
        foreach (var s in vms) s.Vm.Join(TimeSpan.FromSeconds(30));
        double wall = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
        // Every thread has stopped: the event accounting must balance exactly now (free-running VMs too).
        foreach (var s in vms) if (s.Checker.Violation == null) s.Checker.CheckAll(-1);

        var report = new StormReport
        {
            Config = c, Shard = $"{o.ShardIndex}/{o.ShardCount}", VmsRun = vms.Count, WallSeconds = wall,
            SteadyStateAllocatedBytes = steady ? RunLoopBytes(vms) + injectorAllocated + driverEnd - driverStart - reporting : 0,
            SteadyStateTranslationBytes = steady ? translateEnd - translateStart : 0,
            HostResources = overCeiling,
        };
        var init = new LatencyHistogram(); var sipi = new LatencyHistogram(); var fix = new LatencyHistogram();
        for (int k = 0; k < vms.Count; k++)
        {
            var s = vms[k];
            for (int m = 0; m < StormVm.GuestTypeNames.Length; m++)
            {
                long n = 0;
                foreach (var v in s.Vm.Vcpus) n += v.IpisSent[m];
                if (n != 0) Add(report.EventsByType, StormVm.GuestTypeNames[m], n);
            }
            for (int m = 0; m < StormVm.HostTypes; m++) if (s.HostInjections[m] != 0) Add(report.EventsByType, StormVm.HostTypeNames[m], s.HostInjections[m]);
            init.Add(s.Checker.InitLatency); sipi.Add(s.Checker.SipiLatency); fix.Add(s.Checker.FixedLatency);
            var trace = s.Trace();
            string text = TraceLines(trace);
            long checkIns = 0, starts = 0;
            foreach (var v in s.Vm.Vcpus)
            {
                checkIns += BitConverter.ToUInt32(s.Vm.Ram.Span(StormGuest.Epochs + (ulong)v.Id * 4, 4));
                starts += s.Checker.Starts(v.Id);
            }
            var r = new StormVmResult
            {
                Vm = indices[k], Seed = s.Options.Seed, Events = s.Events(), Turns = s.Turns, CheckIns = checkIns, Starts = starts,
                Exit = s.Vm.ExitKind == VmExitKind.Stopped ? (s.Vm.ExitMessage ?? "stopped") : $"{s.Vm.ExitKind}: {s.Vm.ExitMessage}",
                TraceSha256 = c.Deterministic ? Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))) : null,
            };
            report.VmResults.Add(r);
            report.Events += r.Events;
            report.Turns += r.Turns;
            var viol = s.Checker.Violation;
            if (viol == null && s.Vm.ExitMessage?.StartsWith("deterministic run: every vCPU is blocked", StringComparison.Ordinal) == true)
                viol = new StormViolation("no deadlock: the BSP always wakes (timer), so some vCPU can run", s.Vm.ExitMessage, r.Events, -1);
            if (viol == null && s.Vm.ExitKind is not (VmExitKind.Stopped or VmExitKind.None or VmExitKind.HostResources))
                viol = new StormViolation("the guest keeps running (no triple fault, no internal error)", $"{s.Vm.ExitKind}: {s.Vm.ExitMessage}{(s.Vm.Diagnosis != null ? "\n" + s.Vm.Diagnosis.Format() : "")}", r.Events, -1);
            if (viol != null) report.Failures.Add(Fail(o, s, indices[k], viol, trace));
        }
        report.EventsPerSecond = wall > 0 ? report.Events / wall : 0;
        double ticksPerNs = vms.Count > 0 ? vms[0].Vm.Clock.Frequency / 1e9 : 1;
        report.Latency["init_latch_to_accept"] = LatencySummary.Of(init, ticksPerNs);
        report.Latency["sipi_latch_to_start"] = LatencySummary.Of(sipi, ticksPerNs);
        report.Latency["fixed_latch_to_ack"] = LatencySummary.Of(fix, ticksPerNs);
        return report;
    }

    static void Add(SortedDictionary<string, long> d, string k, long n) => d[k] = d.GetValueOrDefault(k) + n;

    public static string TraceLines(List<TraceEvent> trace)
    {
        var w = new StringWriter();
        TraceText.Write(w, trace);
        return w.ToString();
    }

    static StormFailure Fail(StormRunOptions o, StormVm s, int vm, StormViolation v, List<TraceEvent> trace)
    {
        var f = new StormFailure { Vm = vm, Seed = s.Options.Seed, Invariant = v.Invariant, Detail = v.Detail, AtEvent = v.AtEvent };
        var log = o.Log;
        if (log != null)
        {
            log.WriteLine($"VIOLATION in vm {vm} (seed {s.Options.Seed}, base seed {o.Config.Seed}, {(o.Config.Deterministic ? "deterministic" : "free-running")}) at event {v.AtEvent}:");
            log.WriteLine($"  invariant: {v.Invariant}");
            log.WriteLine($"  {v.Detail}");
            log.WriteLine($"  last {Math.Min(40, trace.Count)} trace events (clock ticks, recorder, route, KVM path, ICR, mp_state):");
            for (int k = Math.Max(0, trace.Count - 40); k < trace.Count; k++) log.WriteLine($"    {TraceText.Line(trace[k])}");
        }
        if (o.FailureDirectory != null)
        {
            Directory.CreateDirectory(o.FailureDirectory);
            string stem = Path.Combine(o.FailureDirectory, $"storm-seed{o.Config.Seed}-vm{vm}");
            File.WriteAllText(stem + ".trace.txt", $"# {v.Invariant}: {v.Detail}\n" + TraceLines(trace));
            using (var js = File.Create(stem + ".trace.json"))
                ChromeTrace.Write(js, trace, s.Vm, new Dictionary<int, string> { [s.Vm.Vcpus.Length] = "host (VMM injections)" });
            f.TraceFile = stem + ".trace.txt";
            log?.WriteLine($"  full trace: {stem}.trace.txt and {stem}.trace.json (Chrome/Perfetto)");
        }
        return f;
    }
}
