using System.CommandLine;
using System.Text.Json;
using DynaSmp.Machine.Storm;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp merge FILE... [--json OUT]`: one report from the --json files of a sharded storm or boot.</summary>
static class MergeCommand
{
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var files = new Argument<string[]>("SHARD.json") { Description = "storm or boot --json reports of the shards", Arity = ArgumentArity.OneOrMore };
        var json = CliOptions.OutputFile("--json", "write the merged report as JSON");
        var c = new Command("merge", "combine storm or boot --json shard reports (totals, merged percentiles, failures)") { files, json };
        c.SetAction(p => Run(p.GetValue(files)!, p.GetValue(json)));
        return c;
    }

    static int Run(string[] positionals, string? json)
    {
        HostFiles.CheckOutput(json, "--json");
        var reports = positionals.Select(p => (Path: p, Bytes: ReadBytes(p))).ToList();
        var kinds = reports.Select(r => IsBoot(r.Path, r.Bytes)).Distinct().ToList();
        if (kinds.Count > 1) throw new UsageException("merge: the files mix storm and boot reports; merge each kind on its own");
        try
        {
            return kinds[0]
                ? MergeBoot(reports.Select(r => Parse<BootSummary>(r.Path, r.Bytes, "a boot --json report")).ToList(), json)
                : MergeStorm(reports.Select(r => Parse<StormReport>(r.Path, r.Bytes, "a storm --json report")).ToList(), json);
        }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
    }

    static int MergeStorm(List<StormReport> shards, string? json)
    {
        var merged = StormMerge.Merge(shards);
        Console.WriteLine($"dynasmp merge: {shards.Count} storm shard report(s), {merged.VmsRun} of {merged.Config.Vms} VMs");
        StormCommand.Print(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, Indented));
        return merged.Failures.Count > 0 ? (int)ExitStatus.GuestFailed : merged.HostResources != null ? (int)ExitStatus.HostResources : 0;
    }

    static int MergeBoot(List<BootSummary> shards, string? json)
    {
        var merged = BootMerge.Merge(shards);
        Console.WriteLine($"dynasmp merge: {shards.Count} boot shard report(s), {merged.Vms} VMs x {merged.VcpusPerVm} vCPUs");
        BootCommand.PrintSummary(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, Indented));
        return merged.Status;
    }

    static byte[] ReadBytes(string path) => HostFiles.ReadInput(path, "shard report", 512L << 20, "a storm or boot --json report");

    /// <summary>A boot report, told from a storm report by the field only it has.</summary>
    static bool IsBoot(string path, byte[] bytes)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("vcpus_per_vm", out _);
        }
        catch (JsonException e) { throw new UsageException($"{path}: not a storm or boot --json report ({e.Message})"); }
    }

    static T Parse<T>(string path, byte[] bytes, string what) where T : class
    {
        try { return JsonSerializer.Deserialize<T>(bytes) ?? throw new UsageException($"{path}: empty report"); }
        catch (JsonException e) { throw new UsageException($"{path}: not {what} ({e.Message})"); }
    }

    internal static T Read<T>(string path, string what) where T : class => Parse<T>(path, ReadBytes(path), what);
}
