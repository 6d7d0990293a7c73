using System.Text.Json;
using System.Text.Json.Serialization;
using DynaSmp.Machine;

namespace DynaSmp.Cli;

/// <summary>`--deterministic [--seed S]` and `--stats FILE`, shared by `run` and `boot`.</summary>
sealed record StatsOptions(int? Seed, string? StatsPath)
{
    public static readonly string[] Options = ["--seed", "--stats"];
    public static readonly string[] Switches = ["--deterministic"];
    public const string Usage = "[--deterministic [--seed S]] [--stats FILE]";

    public static StatsOptions Parse(CliArgs a)
    {
        bool deterministic = a.Switch("--deterministic");
        if (!deterministic && a.String("--seed") != null) throw new UsageException("--seed needs --deterministic");
        int? seed = deterministic ? a.Int("--seed", 1, 0, int.MaxValue) : null;
        string? stats = a.String("--stats");
        HostFiles.CheckOutput(stats, "--stats");
        return new StatsOptions(seed, stats);
    }

    /// <summary>Writes the stats file of a finished run (nothing without --stats).</summary>
    public void Write(string command, IReadOnlyList<Vm> vms, double wallSeconds)
    {
        if (StatsPath == null) return;
        var file = new StatsFile { Command = command, Deterministic = Seed.HasValue, Seed = Seed, Host = new StatsHost { WallSeconds = wallSeconds } };
        for (int k = 0; k < vms.Count; k++) file.Vms.Add(VmStats.Capture(vms[k], k));
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
}
