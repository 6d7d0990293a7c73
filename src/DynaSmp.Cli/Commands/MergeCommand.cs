using System.Text.Json;
using DynaSmp.Machine.Storm;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp merge FILE... [--json OUT]`: one report from the --json files of a sharded storm.</summary>
static class MergeCommand
{
    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--json" });
        if (a.Positionals.Count == 0) throw new UsageException("usage: dynasmp merge SHARD.json... [--json OUT]");
        string? json = a.String("--json");
        HostFiles.CheckOutput(json, "--json");
        StormReport merged;
        try { merged = StormMerge.Merge(a.Positionals.Select(StormCommand.ReadReport).ToList()); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        Console.WriteLine($"dynasmp merge: {a.Positionals.Count} shard report(s), {merged.VmsRun} of {merged.Config.Vms} VMs");
        StormCommand.Print(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, new JsonSerializerOptions { WriteIndented = true }));
        return merged.Failures.Count == 0 ? 0 : (int)ExitStatus.GuestFailed;
    }
}
