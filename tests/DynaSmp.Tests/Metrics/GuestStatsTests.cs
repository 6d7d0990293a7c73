using System.Text.Json;
using DynaSmp.Cli;
using DynaSmp.Machine;
using DynaSmp.Machine.Guests;

namespace DynaSmp.Tests.Metrics;

/// <summary>`--stats` in deterministic mode: the built-in guest's counts are identical run to run, describe what the
/// guest did (its IPIs, halts and phase marks), and move when the guest changes by one instruction.</summary>
public class GuestStatsTests
{
    static VmStats Boot(int cpus, int seed, BuiltinGuestOptions? options = null)
    {
        using var pc = new Pc(new VmConfig { Vcpus = cpus, MemoryBytes = 64UL << 20, DeterministicSeed = seed });
        pc.LoadMultiboot(BuiltinGuest.Build(options ?? BuiltinGuestOptions.Default));
        pc.Vm.Start();
        Assert.True(pc.Vm.WaitForExit(TimeSpan.FromSeconds(60)), "the deterministic boot did not finish");
        pc.Vm.Join();
        Assert.Equal(VmExitKind.DebugExit, pc.Vm.ExitKind);
        Assert.Equal(1, pc.Vm.ExitStatus); // every CPU online
        return VmStats.Capture(pc.Vm, 0);
    }

    static string Json(VmStats s) => JsonSerializer.Serialize(s);

    /// <summary>The file without its host-time sections, as `compare` sees it.</summary>
    static string GuestPart(VmStats s) => string.Join('\n', MetricsComparison.Flatten(JsonDocument.Parse(Json(s)).RootElement).Select(kv => $"{kv.Key}={kv.Value.GetRawText()}"));

    [Fact]
    public void Deterministic_stats_are_identical_across_runs()
    {
        string first = GuestPart(Boot(6, seed: 11));
        for (int k = 0; k < 3; k++) Assert.Equal(first, GuestPart(Boot(6, seed: 11)));
    }

    [Fact]
    public void Stats_count_what_the_built_in_guest_does()
    {
        const int cpus = 5;
        var s = Boot(cpus, seed: 3);
        Assert.Equal(cpus, s.Vcpus.Count);
        Assert.Equal(s.Vcpus.Sum(v => (long)v.Retired), (long)s.Retired);
        var bsp = s.Vcpus[0];
        // Per AP: INIT assert + INIT de-assert, then two STARTUPs (Linux's wakeup_secondary_cpu_via_init).
        Assert.Equal(2 * (cpus - 1), bsp.IpisSent["init"]);
        Assert.Equal(2 * (cpus - 1), bsp.IpisSent["startup"]);
        Assert.Equal(0, bsp.IpisSent["fixed"]);
        Assert.Equal([GuestLayout.PhaseLongMode, GuestLayout.PhaseApBringup, GuestLayout.PhaseApsDone], bsp.Phases.Select(p => p.Phase));
        Assert.True(bsp.Phases[0].Retired < bsp.Phases[1].Retired && bsp.Phases[1].Retired < bsp.Phases[2].Retired);
        Assert.True(bsp.Phases[0].VirtualNs < bsp.Phases[1].VirtualNs && bsp.Phases[1].VirtualNs < bsp.Phases[2].VirtualNs);
        Assert.True(bsp.Exits["port_io"] > 0 && bsp.Exits["lapic_mmio"] > 0);
        Assert.True(bsp.TlbFlushes > 0); // paging and long mode turned on
        Assert.Null(bsp.BringupVmInstructions);
        foreach (var ap in s.Vcpus.Skip(1))
        {
            Assert.Equal(2, ap.IpisReceived["init"]);
            Assert.Equal(2, ap.IpisReceived["startup"]);
            Assert.Equal(1, ap.InitResets);
            Assert.Equal(1, ap.SipiStarts);
            Assert.Equal(1, ap.Halts);
            Assert.Equal(1, ap.Exits["hlt"]);
            Assert.Equal([GuestLayout.PhaseApOnline], ap.Phases.Select(p => p.Phase));
            // The AP's own instructions are part of the VM's count from its INIT to its HLT.
            Assert.True(ap.BringupVmInstructions >= ap.Retired, $"AP {ap.Id}: bring-up {ap.BringupVmInstructions} < own {ap.Retired}");
            // Deterministic mode stamps with the virtual clock, which moves with the instructions retired.
            Assert.True(ap.BringupVirtualNs > 0);
            Assert.Null(ap.Host.BringupUs);
        }
        Assert.True(s.BlocksTranslated > 0 && s.BlocksTranslated == s.Vcpus.Sum(v => v.BlocksDecoded));
    }

    [Fact]
    public void One_extra_guest_instruction_moves_the_counts_and_compare_catches_it()
    {
        var baseline = Boot(4, seed: 5);
        var changed = Boot(4, seed: 5, new BuiltinGuestOptions { ExtraBspNops = 1 });
        // Up to the AP bring-up phase the BSP runs alone, so the NOP shows exactly there.
        Assert.Equal(baseline.Vcpus[0].Phases[0].Retired, changed.Vcpus[0].Phases[0].Retired);
        Assert.Equal(baseline.Vcpus[0].Phases[1].Retired + 1, changed.Vcpus[0].Phases[1].Retired);
        Assert.NotEqual(baseline.Retired, changed.Retired);

        var moves = MetricsComparison.Compare(JsonDocument.Parse(Json(baseline)).RootElement, JsonDocument.Parse(Json(changed)).RootElement, 0);
        Assert.Contains(moves, m => m.Path == "vcpus[0].phases[1].retired" && m.Verdict == MetricVerdict.Regressed);
        Assert.Contains(moves, m => m.IsRegression);
        // Compared with itself, nothing moves.
        Assert.DoesNotContain(MetricsComparison.Compare(JsonDocument.Parse(Json(changed)).RootElement, JsonDocument.Parse(Json(changed)).RootElement, 0), m => m.Verdict != MetricVerdict.Same);
    }
}
