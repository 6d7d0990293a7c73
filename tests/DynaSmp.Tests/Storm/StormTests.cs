using DynaSmp.Jit;
using DynaSmp.Machine.Storm;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Storm;

/// <summary>Short storms with fixed seeds in both modes (CI), replay, the broken-rule switches, and shard merging.</summary>
public class StormTests(ITestOutputHelper output)
{
    internal static StormReport Run(int seed, int vms, int cpus, long events, bool deterministic, BrokenRule broken = BrokenRule.None,
        int shard = 0, int shards = 1, int? onlyVm = null, double? duration = null, TextWriter? log = null) =>
        StormRun.Run(new StormRunOptions
        {
            Config = new StormConfig { Vms = vms, Cpus = cpus, Seed = seed, Events = duration == null ? events : null, DurationSeconds = duration, Deterministic = deterministic },
            ShardIndex = shard, ShardCount = shards, OnlyVm = onlyVm, BrokenRule = broken, Log = log,
        });

    string Describe(StormReport r) =>
        $"{r.Events} events, {r.Turns} turns, {r.WallSeconds:F2} s, failures: {string.Join("; ", r.Failures.Select(f => $"vm {f.Vm}: {f.Invariant}: {f.Detail}"))}; " +
        string.Join(", ", r.EventsByType.Select(kv => $"{kv.Key}={kv.Value}")) + "; " +
        string.Join(", ", r.VmResults.Select(v => $"vm {v.Vm} exit '{v.Exit}' check-ins {v.CheckIns} starts {v.Starts}"));

    [Fact]
    public void Deterministic_storm_holds_every_invariant()
    {
        var r = Run(seed: 11, vms: 2, cpus: 6, events: 20_000, deterministic: true, log: new StringWriter());
        output.WriteLine(Describe(r));
        Assert.True(r.Failures.Count == 0, Describe(r));
        Assert.True(r.Events >= 20_000, Describe(r));
        foreach (var type in new[] { "fixed", "nmi", "init", "init_deassert", "startup", "host_nmi", "host_init", "host_sipi", "host_set_mp_state", "host_bsp_reset" })
            Assert.True(r.EventsByType.GetValueOrDefault(type) > 0, $"no {type} events: {Describe(r)}");
        Assert.All(r.VmResults, v => Assert.True(v.CheckIns > 10 && v.CheckIns <= v.Starts, Describe(r)));
        Assert.True(r.Latency["sipi_latch_to_start"].Count > 0 && r.Latency["init_latch_to_accept"].Count > 0);
    }

    [Fact]
    public void Free_running_storm_holds_every_invariant()
    {
        var r = Run(seed: 12, vms: 2, cpus: 4, events: 30_000, deterministic: false, log: new StringWriter());
        output.WriteLine(Describe(r));
        Assert.True(r.Failures.Count == 0, Describe(r));
        Assert.True(r.Events >= 30_000, Describe(r));
        Assert.All(r.VmResults, v => Assert.True(v.CheckIns > 3 && v.CheckIns <= v.Starts, Describe(r)));
    }
}
