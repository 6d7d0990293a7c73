using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DynaSmp.Machine.Storm;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp storm`: INIT/SIPI/NMI/IPI storms with continuous invariant checks, replay by seed, and shards.</summary>
static class StormCommand
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static Command Create()
    {
        var vms = CliOptions.Int("--vms", 1, 1, 1024, "VMs");
        var cpus = CliOptions.Int("--cpus", 4, 1, 255, "vCPUs per VM");
        var seed = CliOptions.Int("--seed", 1, 0, int.MaxValue, "base seed (each VM's seed derives from it)");
        var events = CliOptions.Text("--events", "stop after this many events in all (default 100000 unless --duration)", "E");
        var duration = CliOptions.Text("--duration", "stop after this many seconds instead", "S");
        var deterministic = CliOptions.Flag("--deterministic", "seeded single-thread interleaving with virtual time: the same seed gives the same trace");
        var noX2apic = CliOptions.Flag("--no-x2apic", "keep every vCPU in xAPIC mode");
        var shard = CliOptions.Shard();
        var replay = CliOptions.Text("--replay", "re-run the first failure of a storm --json report deterministically", "FILE");
        var json = CliOptions.OutputFile("--json", "write the report (counts, latency histograms, failures) as JSON");
        var traceDir = CliOptions.Text("--trace-dir", "where a violation's traces are written (default .)", "DIR");
        var c = new Command("storm", "INIT/SIPI/NMI/IPI storm with continuous KVM-invariant checks; a violation exits 10 with its trace")
            { vms, cpus, seed, events, duration, deterministic, noX2apic, shard, replay, json, traceDir };
        c.SetAction(p => Run(p.GetValue(vms), p.GetValue(cpus), p.GetValue(seed), p.GetValue(events), p.GetValue(duration),
            p.GetValue(deterministic), p.GetValue(noX2apic), p.GetValue(shard), p.GetValue(replay), p.GetValue(json), p.GetValue(traceDir) ?? "."));
        return c;
    }

    static int Run(int vms, int cpus, int seed, string? ev, string? durationText, bool deterministic, bool noX2apic, Shard shard,
        string? replay, string? json, string traceDir)
    {
        HostFiles.CheckOutput(json, "--json");
        StormRunOptions o;
        if (replay != null)
        {
            var old = ReadReport(replay);
            if (old.Failures.Count == 0) throw new UsageException($"--replay {replay}: the report has no failure to replay");
            var f = old.Failures[0];
            var c = old.Config;
            // The failing VM alone, deterministic, with its own event count as the budget (the violation came before it).
            long budget = old.VmResults.FirstOrDefault(r => r.Vm == f.Vm)?.Events ?? StormRun.EventsPerVm(c);
            o = new StormRunOptions
            {
                Config = new StormConfig { Vms = c.Vms, Cpus = c.Cpus, Seed = c.Seed, Events = budget * c.Vms, Deterministic = true, X2Apic = c.X2Apic },
                OnlyVm = f.Vm, FailureDirectory = traceDir, Log = Console.Out,
            };
            Console.WriteLine($"dynasmp storm: replaying vm {f.Vm} (seed {f.Seed}) of {replay}: expected '{f.Invariant}'{(c.Deterministic ? "" : " (the original run was free-running: the deterministic replay may take another interleaving)")}");
        }
        else
        {
            double? duration = durationText == null ? null
                : double.TryParse(durationText, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d > 0 && d <= 86400 ? d
                : throw new UsageException($"--duration must be a number of seconds above 0 (got '{durationText}')");
            if (ev != null && duration != null) throw new UsageException("--events and --duration exclude each other");
            long? events = ev == null ? null : long.TryParse(ev, NumberStyles.Integer, CultureInfo.InvariantCulture, out long e) && e > 0 ? e
                : throw new UsageException($"--events must be a positive integer (got '{ev}')");
            if (events == null && duration == null) events = 100_000;
            o = new StormRunOptions
            {
                Config = new StormConfig { Vms = vms, Cpus = cpus, Seed = seed, Events = events, DurationSeconds = duration, Deterministic = deterministic, X2Apic = !noX2apic },
                ShardIndex = shard.Index, ShardCount = shard.Count, FailureDirectory = traceDir, Log = Console.Out,
            };
        }
        int vmsHere = replay != null ? 1 : shard.SizeOf(o.Config.Vms);
        o = o with { RssCeiling = Admission.Check(Math.Max(1, vmsHere), o.Config.Cpus, StormGuestMemory, 4096, 1 << 20, "--vms", "--cpus") };
        bool live = !Console.IsOutputRedirected;
        var cfg = o.Config;
        Console.WriteLine($"dynasmp storm: {cfg.Vms} VM{(cfg.Vms == 1 ? "" : "s")} x {cfg.Cpus} vCPUs, seed {cfg.Seed}, {(cfg.Deterministic ? "deterministic (virtual time)" : "free-running")}, " +
                          $"{(cfg.Events is long n ? $"{n:N0} events" : $"{cfg.DurationSeconds} s")}, shard {o.ShardIndex}/{o.ShardCount}");
        if (live) o = o with { Progress = line => Console.Write($"\r  {line}") };
        var report = StormRun.Run(o);
        if (live) Console.WriteLine();
        Print(report);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, report, Json));
        return report.Failures.Count > 0 ? (int)ExitStatus.GuestFailed : report.HostResources != null ? (int)ExitStatus.HostResources : 0;
    }

    const ulong StormGuestMemory = StormGuest.MemoryBytes;

    internal static StormReport ReadReport(string path) => MergeCommand.Read<StormReport>(path, "a storm --json report");

    internal static void Print(StormReport r)
    {
        Console.WriteLine($"  VMs run:           {r.VmsRun} (shard {r.Shard})");
        Console.WriteLine($"  events:            {r.Events:N0} in {r.WallSeconds:F2} s = {r.EventsPerSecond:N0} events/s{(r.Turns > 0 ? $", {r.Turns:N0} scheduler turns" : "")}");
        foreach (var (type, n) in r.EventsByType)
            Console.WriteLine($"    {type,-18} {n,12:N0}  {(r.WallSeconds > 0 ? n / r.WallSeconds : 0),12:N0}/s");
        Console.WriteLine($"  send-to-accept latency (ns; {(r.Config.Deterministic ? "virtual" : "host")} clock):");
        foreach (var (what, l) in r.Latency)
            Console.WriteLine($"    {what,-22} n {l.Count,10:N0}  p50 {l.P50,10:N0}  p90 {l.P90,10:N0}  p99 {l.P99,10:N0}  p99.9 {l.P999,10:N0}  max {l.Max,12:N0}");
        Console.WriteLine($"  steady-state allocated bytes: {r.SteadyStateAllocatedBytes:N0} in the run loop" +
                          $" (and {r.SteadyStateTranslationBytes:N0} translating code first reached after warm-up)");
        if (r.HostResources != null) Console.WriteLine($"  STOPPED: {r.HostResources}");
        Console.WriteLine($"  violations:        {r.Failures.Count}");
        foreach (var f in r.Failures) Console.WriteLine($"    vm {f.Vm} seed {f.Seed}: {f.Invariant}: {f.Detail}");
    }
}
