using DynaSmp.Machine.Storm;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Storm;

/// <summary>Short storms with fixed seeds in both modes (CI), exact replay, the broken-rule switches, shard merging.</summary>
public class StormTests(ITestOutputHelper output)
{
    internal static StormReport Run(int seed, int vms, int cpus, long? events, bool deterministic, BrokenRule broken = BrokenRule.None,
        int shard = 0, int shards = 1, int? onlyVm = null, double? duration = null) =>
        StormRun.Run(new StormRunOptions
        {
            Config = new StormConfig { Vms = vms, Cpus = cpus, Seed = seed, Events = events, DurationSeconds = duration, Deterministic = deterministic },
            ShardIndex = shard, ShardCount = shards, OnlyVm = onlyVm, BrokenRule = broken,
        });

    static string Describe(StormReport r) =>
        $"{r.Events} events, {r.Turns} turns, {r.WallSeconds:F2} s, failures: {string.Join("; ", r.Failures.Select(f => $"vm {f.Vm} at event {f.AtEvent}: {f.Invariant}: {f.Detail}"))}; " +
        string.Join(", ", r.EventsByType.Select(kv => $"{kv.Key}={kv.Value}")) + "; " +
        string.Join(", ", r.VmResults.Select(v => $"vm {v.Vm} exit '{v.Exit}' check-ins {v.CheckIns} starts {v.Starts}"));

    [Fact]
    public void Deterministic_storm_holds_every_invariant()
    {
        var r = Run(seed: 11, vms: 2, cpus: 6, events: 16_000, deterministic: true);
        output.WriteLine(Describe(r));
        Assert.True(r.Failures.Count == 0, Describe(r));
        Assert.True(r.Events >= 16_000, Describe(r));
        foreach (var type in new[] { "fixed", "nmi", "init", "init_deassert", "startup", "host_nmi", "host_fixed", "host_init", "host_sipi", "host_set_mp_state", "host_bsp_reset" })
            Assert.True(r.EventsByType.GetValueOrDefault(type) > 0, $"no {type} events: {Describe(r)}");
        Assert.All(r.VmResults, v => Assert.True(v.CheckIns > 10 && v.CheckIns <= v.Starts, Describe(r)));
        Assert.True(r.Latency["sipi_latch_to_start"].Count > 0 && r.Latency["init_latch_to_accept"].Count > 0 && r.Latency["fixed_latch_to_ack"].Count > 0);
    }

    [Fact]
    public void Free_running_storm_holds_every_invariant()
    {
        var r = Run(seed: 12, vms: 2, cpus: 4, events: 20_000, deterministic: false);
        output.WriteLine(Describe(r));
        Assert.True(r.Failures.Count == 0, Describe(r));
        Assert.True(r.Events >= 20_000, Describe(r));
        Assert.All(r.VmResults, v => Assert.True(v.CheckIns > 3 && v.CheckIns <= v.Starts, Describe(r)));
    }

    [Fact]
    public void Same_seed_replays_byte_for_byte_and_different_seeds_differ()
    {
        var a = Run(seed: 21, vms: 1, cpus: 5, events: 6_000, deterministic: true);
        var b = Run(seed: 21, vms: 1, cpus: 5, events: 6_000, deterministic: true);
        var c = Run(seed: 22, vms: 1, cpus: 5, events: 6_000, deterministic: true);
        Assert.True(a.Failures.Count == 0, Describe(a));
        Assert.Equal(a.VmResults[0].TraceSha256, b.VmResults[0].TraceSha256);
        Assert.Equal(a.Events, b.Events);
        Assert.Equal(a.Turns, b.Turns);
        Assert.Equal(a.EventsByType, b.EventsByType);
        Assert.NotEqual(a.VmResults[0].TraceSha256, c.VmResults[0].TraceSha256);
    }

    /// <summary>Each switch breaks one rule; a storm must catch it within a bounded number of events, name the rule,
    /// and a replay of the failing VM from the report must stop at the same event with the same finding.</summary>
    [Theory]
    [InlineData(BrokenRule.AcceptSecondSipi, "a SIPI is accepted only in INIT_RECEIVED")]
    [InlineData(BrokenRule.DropWakeup, "no lost wake-up (watchdog)")]
    [InlineData(BrokenRule.InitBspAsAp, "INIT on the BSP leaves it RUNNABLE at the reset vector")]
    [InlineData(BrokenRule.LoseNmi, "no NMI lost")]
    public void Storm_catches_a_broken_rule_and_replay_reproduces_it(BrokenRule rule, string invariant)
    {
        const long bound = 40_000;
        var r = Run(seed: 31, vms: 2, cpus: 4, events: 2 * bound, deterministic: true, broken: rule);
        output.WriteLine(Describe(r));
        Assert.NotEmpty(r.Failures);
        var f = r.Failures[0];
        Assert.True(f.Invariant == invariant, Describe(r));
        Assert.True(f.AtEvent <= bound, $"caught only at event {f.AtEvent}");
        var replay = Run(seed: 31, vms: 2, cpus: 4, events: 2 * bound, deterministic: true, broken: rule, onlyVm: f.Vm);
        Assert.Single(replay.Failures);
        Assert.Equal(f.Invariant, replay.Failures[0].Invariant);
        Assert.Equal(f.Detail, replay.Failures[0].Detail);
        Assert.Equal(f.AtEvent, replay.Failures[0].AtEvent);
        // And with the rule intact the same seed is clean.
        Assert.Empty(Run(seed: 31, vms: 1, cpus: 4, events: 8_000, deterministic: true, onlyVm: f.Vm).Failures);
    }

    [Fact]
    public void Three_merged_shards_equal_one_unsharded_deterministic_run()
    {
        var whole = Run(seed: 41, vms: 5, cpus: 3, events: 10_000, deterministic: true);
        var parts = Enumerable.Range(0, 3).Select(i => Run(seed: 41, vms: 5, cpus: 3, events: 10_000, deterministic: true, shard: i, shards: 3)).ToList();
        Assert.Equal([2, 2, 1], parts.Select(p => p.VmsRun));
        var merged = StormMerge.Merge(parts);
        Assert.Equal(whole.VmsRun, merged.VmsRun);
        Assert.Equal(whole.Events, merged.Events);
        Assert.Equal(whole.Turns, merged.Turns);
        Assert.Equal(whole.EventsByType, merged.EventsByType);
        Assert.Equal(whole.VmResults.Select(v => (v.Vm, v.Seed, v.Events, v.TraceSha256)), merged.VmResults.Select(v => (v.Vm, v.Seed, v.Events, v.TraceSha256)));
        foreach (var (k, l) in whole.Latency)
        {
            var m = merged.Latency[k];
            Assert.Equal((l.Count, l.P50, l.P90, l.P99, l.P999, l.Max), (m.Count, m.P50, m.P90, m.P99, m.P999, m.Max));
        }
        Assert.Throws<ArgumentException>(() => StormMerge.Merge([parts[0], parts[0]]));
    }
}
