using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using DynaSmp.Machine;

namespace DynaSmp.Cli;

/// <summary>`--deterministic [--seed S]` and `--stats FILE`, shared by `run` and `boot`.</summary>
sealed record StatsOptions(int? Seed, string? StatsPath)
{
    /// <summary>The three options, added to <paramref name="command"/>; <see cref="From"/> reads them back.</summary>
    public sealed record Symbols(Option<bool> Deterministic, Option<int> Seed, Option<string?> Stats);

    public static Symbols AddTo(Command command)
    {
        var s = new Symbols(
            CliOptions.Flag("--deterministic", "one seeded scheduler thread per VM with virtual time: guest metrics identical run to run"),
            CliOptions.Int("--seed", 1, 0, int.MaxValue, "the scheduler's seed (needs --deterministic)"),
            CliOptions.OutputFile("--stats", "write guest metrics per VM and vCPU as JSON (for dynasmp compare)"));
        command.Options.Add(s.Deterministic); command.Options.Add(s.Seed); command.Options.Add(s.Stats);
        return s;
    }

    public static StatsOptions From(ParseResult p, Symbols s)
    {
        bool deterministic = p.GetValue(s.Deterministic);
        if (!deterministic && p.GetResult(s.Seed) is { Implicit: false }) throw new UsageException("--seed needs --deterministic");
        string? stats = p.GetValue(s.Stats);
        HostFiles.CheckOutput(stats, "--stats");
        return new StatsOptions(deterministic ? p.GetValue(s.Seed) : null, stats);
    }

    /// <summary>Writes the stats file of a finished run (nothing without --stats).</summary>
    public void Write(string command, IReadOnlyList<Vm> vms, double wallSeconds, IReadOnlyList<int>? vmNumbers = null)
    {
        if (StatsPath == null) return;
        var file = new StatsFile { Command = command, Deterministic = Seed.HasValue, Seed = Seed,
            Host = new StatsHost { WallSeconds = wallSeconds, GuestRamHugePages = vms.Count > 0 && vms[0].Ram.HugePages } };
        for (int k = 0; k < vms.Count; k++) file.Vms.Add(VmStats.Capture(vms[k], vmNumbers?[k] ?? k));
        HostFiles.WriteOutput(StatsPath, "--stats", s => JsonSerializer.Serialize(s, file, StatsFile.JsonOptions));
    }
}

/// <summary>The `--stats` file: guest metrics per VM and vCPU (<see cref="VmStats"/>), and host figures under
/// <c>host</c>, which `dynasmp compare` reports but does not gate on.</summary>
public sealed class StatsFile
{
    public const string SchemaName = "dynasmp-stats/1";
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    [JsonPropertyName("schema")] public string Schema { get; set; } = SchemaName;
    [JsonPropertyName("command")] public string Command { get; set; } = "";
    [JsonPropertyName("deterministic")] public bool Deterministic { get; set; }
    [JsonPropertyName("seed")] public int? Seed { get; set; }
    [JsonPropertyName("vms")] public List<VmStats> Vms { get; set; } = new();
    [JsonPropertyName("host")] public StatsHost Host { get; set; } = new();
}

public sealed class StatsHost
{
    [JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    /// <summary>Whether the runtime kept W^X for host code (on: every compiled block costs a remap).</summary>
    [JsonPropertyName("write_xor_execute")] public bool WriteXorExecute { get; set; } = RuntimeSettings.WriteXorExecute;
    /// <summary>The runtime's tiering delay (ms) before the emulator's own code is promoted to optimised code.</summary>
    [JsonPropertyName("call_counting_delay_ms")] public int CallCountingDelayMs { get; set; } = RuntimeSettings.CallCountingDelayMs;
    /// <summary>Calls after which the runtime promotes one of the emulator's methods to optimised code.</summary>
    [JsonPropertyName("call_count_threshold")] public int CallCountThreshold { get; set; } = RuntimeSettings.CallCountThreshold;
    /// <summary>The GC's young-generation budget from the environment in MiB (0: the runtime's own), and what the GC did
    /// in the whole process: collections of each generation and the time they stopped every thread.</summary>
    [JsonPropertyName("gc_gen0_size_mib")] public long GcGen0SizeMib { get; set; } = RuntimeSettings.Gen0SizeMib;
    [JsonPropertyName("gc_collections")] public int[] GcCollections { get; set; } = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
    [JsonPropertyName("gc_pause_ms")] public double GcPauseMs { get; set; } = GC.GetTotalPauseDuration().TotalMilliseconds;
    /// <summary>Whether guest RAM is backed by transparent huge pages (Linux guests, where the host allows them).</summary>
    [JsonPropertyName("guest_ram_huge_pages")] public bool GuestRamHugePages { get; set; }
    /// <summary>Whether RyuJIT aligned every loop of translated code (else a loop's speed depends on where it lands).</summary>
    [JsonPropertyName("align_every_loop")] public bool AlignEveryLoop { get; set; } = RuntimeSettings.AlignsEveryLoop;
}
