using System.CommandLine;
using System.Text.Json;
using DynaSmp.Machine.Storm;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp merge FILE... [--json OUT]`: one report from the --json files of a sharded storm.</summary>
static class MergeCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("SHARD.json") { Description = "storm --json reports of the shards", Arity = ArgumentArity.OneOrMore };
        var json = CliOptions.OutputFile("--json", "write the merged report as JSON");
        var c = new Command("merge", "combine storm --json shard reports (totals, merged percentiles, failures)") { files, json };
        c.SetAction(p => Run(p.GetValue(files)!, p.GetValue(json)));
        return c;
    }

    static int Run(string[] positionals, string? json)
    {
        HostFiles.CheckOutput(json, "--json");
        StormReport merged;
        try { merged = StormMerge.Merge(positionals.Select(StormCommand.ReadReport).ToList()); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        Console.WriteLine($"dynasmp merge: {positionals.Length} shard report(s), {merged.VmsRun} of {merged.Config.Vms} VMs");
        StormCommand.Print(merged);
        if (json != null) HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, merged, new JsonSerializerOptions { WriteIndented = true }));
        return merged.Failures.Count == 0 ? 0 : (int)ExitStatus.GuestFailed;
    }
}
