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
        var kinds = positionals.Select(KindOf).Distinct().ToList();
        if (kinds.Count > 1) throw new UsageException("merge: the files mix storm and boot reports; merge each kind on its own");
        try
        {
            return kinds[0] == "boot" ? MergeBoot(positionals, json) : MergeStorm(positionals, json);
        }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
    }

    static int MergeStorm(string[] files, string? json)
    {
        var merged = StormMerge.Merge(files.Select(StormCommand.ReadReport).ToList());
        Console.WriteLine($"dynasmp merge: {files.Length} storm shard report(s), {merged.VmsRun} of {merged.Config.Vms} VMs");
        StormCommand.Print(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, Indented));
        return merged.Failures.Count > 0 ? (int)ExitStatus.GuestFailed : merged.HostResources != null ? (int)ExitStatus.HostResources : 0;
    }

    static int MergeBoot(string[] files, string? json)
    {
        var merged = BootMerge.Merge(files.Select(f => Read<BootSummary>(f, "a boot --json report")).ToList());
        Console.WriteLine($"dynasmp merge: {files.Length} boot shard report(s), {merged.Vms} VMs x {merged.VcpusPerVm} vCPUs");
        BootCommand.PrintSummary(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, Indented));
        return merged.Status;
    }

    /// <summary>"boot" or "storm", from the fields only that report has.</summary>
    static string KindOf(string path)
    {
        var bytes = HostFiles.ReadInput(path, "shard report", 512L << 20, "a storm or boot --json report");
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("vcpus_per_vm", out _)) return "boot";
            return "storm";
        }
        catch (JsonException e) { throw new UsageException($"{path}: not a storm or boot --json report ({e.Message})"); }
    }

    internal static T Read<T>(string path, string what) where T : class
    {
        var bytes = HostFiles.ReadInput(path, "shard report", 512L << 20, what);
        try { return JsonSerializer.Deserialize<T>(bytes) ?? throw new UsageException($"{path}: empty report"); }
        catch (JsonException e) { throw new UsageException($"{path}: not {what} ({e.Message})"); }
    }
}
