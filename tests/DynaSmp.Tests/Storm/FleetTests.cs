using System.Text.Json;
using DynaSmp.Machine;
using DynaSmp.Machine.Storm;
using DynaSmp.Tests.Hostile;


namespace DynaSmp.Tests.Storm;

/// <summary>Fleets across machines (boot --shard, merge of boot and storm shards) and the storm's steady-state and
/// memory-ceiling reports, through the CLI as a user runs them.</summary>
[Collection(DynasmpProcess.Collection)]
public class FleetTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("dynasmp-fleet-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string F(string name) => Path.Combine(_dir, name);

    static JsonElement Json(string path) => JsonDocument.Parse(File.ReadAllBytes(path)).RootElement;

    static Dictionary<int, ulong> RetiredPerVm(string stats) =>
        Json(stats).GetProperty("vms").EnumerateArray().ToDictionary(v => v.GetProperty("vm").GetInt32(), v => v.GetProperty("retired").GetUInt64());

    /// <summary>Three `boot --shard I/3` runs merged equal one unsharded deterministic boot: the same VMs, each with the
    /// same derived seed and so the same retired-instruction count, and the same totals.</summary>
    [Fact]
    public void Three_merged_boot_shards_equal_one_unsharded_deterministic_boot()
    {
        string[] common = ["boot", "--vms", "5", "--cpus", "3", "--deterministic", "--seed", "7"];
        var whole = DynasmpProcess.Run([.. common, "--json", F("whole.json"), "--stats", F("whole-stats.json")]);
        Assert.True(whole.Code == 0, whole.Out + whole.Err);
        var shards = new List<string>();
        var retired = new Dictionary<int, ulong>();
        for (int i = 0; i < 3; i++)
        {
            var r = DynasmpProcess.Run([.. common, "--shard", $"{i}/3", "--json", F($"s{i}.json"), "--stats", F($"s{i}-stats.json")]);
            Assert.True(r.Code == 0, r.Out + r.Err);
            Assert.Contains($"shard {i}/3 of a 5-VM fleet", r.Out);
            shards.Add(F($"s{i}.json"));
            foreach (var (vm, n) in RetiredPerVm(F($"s{i}-stats.json"))) retired.Add(vm, n); // Add throws on an overlap
        }
        Assert.Equal([0, 3], Json(F("s0.json")).GetProperty("vm_numbers").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(RetiredPerVm(F("whole-stats.json")).OrderBy(kv => kv.Key), retired.OrderBy(kv => kv.Key));
        Assert.True(retired.Values.Distinct().Count() > 1, "every VM ran the same interleaving: seeds are not derived per VM");

        var merge = DynasmpProcess.Run(["merge", .. shards, "--json", F("merged.json")]);
        Assert.True(merge.Code == 0, merge.Out + merge.Err);
        var (a, b) = (Json(F("whole.json")), Json(F("merged.json")));
        foreach (var field in new[] { "vms", "vcpus_online", "guest_instructions", "status" })
            Assert.Equal(a.GetProperty(field).GetRawText(), b.GetProperty(field).GetRawText());
        Assert.Equal(a.GetProperty("vm_numbers").GetRawText(), b.GetProperty("vm_numbers").GetRawText());
        Assert.Equal(a.GetProperty("bringup_us").GetProperty("count").GetInt32(), b.GetProperty("bringup_us").GetProperty("count").GetInt32());
        var samples = b.GetProperty("bringup_samples_us").EnumerateArray().Select(e => e.GetDouble()).ToList();
        Assert.Equal(samples.Order(), samples);
        Assert.Equal(samples[(int)Math.Ceiling(0.5 * samples.Count) - 1], b.GetProperty("bringup_us").GetProperty("median").GetDouble());

        var overlap = DynasmpProcess.Run("merge", shards[0], shards[0]);
        Assert.Equal(2, overlap.Code);
        Assert.Contains("appears in two shards", overlap.Err);
    }

    [Fact]
    public void Bad_shards_and_mixed_reports_are_refused_before_running()
    {
        var r = DynasmpProcess.Run("boot", "--shard", "3/3");
        Assert.Equal(2, r.Code);
        Assert.Contains("--shard must be I/N with 0 <= I < N", r.Err);
        r = DynasmpProcess.Run("boot", "--vms", "3", "--shard", "4/8");
        Assert.Equal(2, r.Code);
        Assert.Contains("has no VM 4", r.Err);
        r = DynasmpProcess.Run("storm", "--shard", "x");
        Assert.Equal(2, r.Code);

        Assert.Equal(0, DynasmpProcess.Run("boot", "--cpus", "2", "--json", F("boot.json")).Code);
        Assert.Equal(0, DynasmpProcess.Run("storm", "--cpus", "2", "--events", "2000", "--deterministic", "--json", F("storm.json")).Code);
        r = DynasmpProcess.Run("merge", F("boot.json"), F("storm.json"));
        Assert.Equal(2, r.Code);
        Assert.Contains("mix storm and boot", r.Err);
    }

    /// <summary>After warm-up the run loop allocates nothing: the storm's own threads (vCPU or scheduler, injector,
    /// driver) count their allocations per thread, less what translating newly reached code allocated on them, which is
    /// reported beside it. (The process-wide total also moved by 0-350 bytes from runtime threads DynaSmp does not own.)</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Storm_steady_state_allocates_nothing_outside_translation(bool deterministic)
    {
        string json = F($"steady-{deterministic}.json");
        string[] args = ["storm", "--vms", "1", "--cpus", "6", "--duration", "4", "--json", json];
        var r = DynasmpProcess.Run(deterministic ? [.. args, "--deterministic"] : args);
        Assert.True(r.Code == 0, r.Out + r.Err);
        var j = Json(json);
        long loop = j.GetProperty("steady_state_allocated_bytes").GetInt64();
        Assert.Equal(0, loop);
        Assert.True(j.GetProperty("steady_state_translation_bytes").GetInt64() >= 0);
        Assert.Contains("in the run loop", r.Out);
    }

    /// <summary>Passing the admission ceiling stops the storm with a host-resources report instead of letting the
    /// host swap (the ceiling here is 1 byte, so the first check trips it).</summary>
    [Fact]
    public void A_storm_past_its_memory_ceiling_stops_with_a_host_resources_report()
    {
        var r = StormRun.Run(new StormRunOptions
        {
            Config = new StormConfig { Vms = 1, Cpus = 2, Seed = 3, DurationSeconds = 30, Deterministic = true },
            RssCeiling = 1,
        });
        Assert.NotNull(r.HostResources);
        Assert.Contains("passed the admission ceiling", r.HostResources);
        Assert.True(r.WallSeconds < 20, $"stopped after {r.WallSeconds:F1} s");
        Assert.Empty(r.Failures);
        Assert.All(r.VmResults, v => Assert.Contains("admission ceiling", v.Exit));
    }

    /// <summary>The per-thread accounting sees an allocation in the run loop (so the 0 above is measured, not assumed):
    /// a deterministic VM whose after-turn hook allocates charges it after the mark, and not before.</summary>
    [Fact]
    public void Run_loop_accounting_charges_an_allocation_made_on_the_scheduler_thread()
    {
        using var vm = DynaSmp.Tests.Machine.TestGuests.BringUpVm(4, seed: 5);
        var sink = new List<object>();
        bool allocate = false;
        vm.AfterTurn = _ => { if (Volatile.Read(ref allocate) && sink.Count < 1000) sink.Add(new byte[64]); };
        vm.Start();
        vm.MarkSteadyState();
        Volatile.Write(ref allocate, true);
        var until = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref sink) is { } l && l.Count < 1000 && !vm.StopRequested && DateTime.UtcNow < until) Thread.Sleep(5);
        vm.Join();
        // The guest halts for good after bring-up, so there are as many arrays as turns were left; the first may fall
        // in the turn that was running when the mark moved, before the thread re-sampled.
        int n = sink.Count;
        Assert.True(n >= 2, $"only {n} turns after the mark");
        Assert.True(vm.RunLoopAllocatedBytes >= (n - 1) * 64L, $"charged {vm.RunLoopAllocatedBytes} bytes for {n} 64-byte arrays");
    }
}
