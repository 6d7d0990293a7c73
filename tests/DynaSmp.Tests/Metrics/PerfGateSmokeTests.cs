using System.Text.Json;
using DynaSmp.Perf.Gate;

namespace DynaSmp.Tests.Metrics;

/// <summary>CI runs the perf gate only as a smoke run: every measurement once, tiny, its ratios not judged (timing
/// is never a unit test). It checks that the suite runs and that the committed baseline names what it measures.</summary>
public class PerfGateSmokeTests
{
    [Fact]
    public void Smoke_run_measures_every_ratio_the_committed_baseline_holds()
    {
        var r = PerfGate.Measure(new GateOptions { Smoke = true, Qemu = false }, TextWriter.Null);
        Assert.NotEmpty(r.Ratios);
        foreach (var (key, ratio) in r.Ratios) Assert.True(double.IsFinite(ratio) && ratio > 0, $"{key} = {ratio}");

        string? dir = DynaSmp.Cli.Commands.WorkloadSuite.FindDirectory();
        Assert.NotNull(dir);
        string baselinePath = Path.Combine(dir, "..", "gate", "baseline.json");
        using var baseline = JsonDocument.Parse(File.ReadAllText(baselinePath));
        Assert.Equal(GateResult.SchemaName, baseline.RootElement.GetProperty("schema").GetString());
        var committed = baseline.RootElement.GetProperty("ratios").EnumerateObject().Select(p => p.Name)
            .Order().ToList();
        Assert.Equal(committed, r.Ratios.Keys.Order().ToList());
    }

    [Fact]
    public void The_translation_ratio_times_the_translator_itself_not_the_shared_table()
    {
        // Through BlockTranslator.Translate every call after the first found the shared table's method, so the gate
        // timed a lookup and a slower translator passed: each timed translation must go through RyuJIT.
        long before = DynaSmp.Jit.Translation.BlockTranslator.ThreadCompiles;
        PerfGate.Translation(new GateResult(), rounds: 2, count: 3, TextWriter.Null);
        Assert.True(DynaSmp.Jit.Translation.BlockTranslator.ThreadCompiles - before >= 1 + 2 * 3,
            $"{DynaSmp.Jit.Translation.BlockTranslator.ThreadCompiles - before} compiles for 6 timed translations");
    }
}
