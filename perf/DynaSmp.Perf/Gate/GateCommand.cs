using System.CommandLine;
using System.Text.Json;
using DynaSmp.Cli;

namespace DynaSmp.Perf.Gate;

/// <summary>
/// `DynaSmp.Perf gate`: runs <see cref="PerfGate"/>, compares its ratios with the committed baseline
/// (perf/gate/baseline.json) through <see cref="MetricsComparison"/>, and exits 12 when one rose past the threshold.
/// `--update-baseline` writes the baseline instead (see README).
/// </summary>
public static class GateCommand
{

    /// <summary>Percent a ratio may rise before the gate fails. From the noise measured on the 2-core reference host
    /// (docs/ARCHITECTURE.md, "Perf gate"): 5 unchanged runs moved single ratios up by at most 8.7% (translate_block16) and down by at most 12% (BranchLoop).</summary>
    public const double DefaultThreshold = 12;

    public static int Run(string[] args)
    {
        try
        {
            var rounds = CliOptions.Int("--rounds", 9, 1, 101, "measurement rounds");
            var noQemu = CliOptions.Flag("--no-qemu", "skip the workloads against QEMU");
            var smoke = CliOptions.Flag("--smoke", "a quick run that only checks the gate works");
            var jsonOpt = CliOptions.OutputFile("--json", "write the result as JSON");
            var baselineOpt = CliOptions.Text("--baseline", "the baseline (default perf/gate/baseline.json)", "FILE");
            var thresholdOpt = CliOptions.Text("--threshold", $"percent a ratio may rise (default {DefaultThreshold})", "PCT");
            var updateOpt = CliOptions.Flag("--update-baseline", "write the baseline instead of comparing");
            var root = new RootCommand("DynaSmp.Perf gate: ratios against the committed baseline") { rounds, noQemu, smoke, jsonOpt, baselineOpt, thresholdOpt, updateOpt };
            var p = root.Parse(args);
            if (p.Errors.Count > 0) throw new UsageException(p.Errors[0].Message);
            var options = new GateOptions { Rounds = p.GetValue(rounds), Qemu = !p.GetValue(noQemu), Smoke = p.GetValue(smoke) };
            double threshold = p.GetValue(thresholdOpt) is { } t ? Cli.Commands.CompareCommandPercent.Parse(t) : DefaultThreshold;
            string? json = p.GetValue(jsonOpt);
            bool update = p.GetValue(updateOpt);
            string baselinePath = p.GetValue(baselineOpt) ?? DefaultBaseline()
                ?? throw new UsageException("perf/gate/baseline.json not found above the current directory (give --baseline FILE)");
            if (update && options.Smoke) throw new UsageException("--update-baseline needs a full run (no --smoke)");
            HostFiles.CheckOutput(json, "--json");

            Console.WriteLine($"perf gate: {options.Rounds} rounds{(options.Smoke ? " (smoke)" : "")}, ratio = DynaSmp time / reference time, lower is better");
            var result = PerfGate.Measure(options, Console.Out);
            string text = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
            if (json != null) File.WriteAllText(json, text);
            foreach (var n in result.Host.Notes) Console.WriteLine($"note: {n}");
            if (update)
            {
                File.WriteAllText(baselinePath, text);
                Console.WriteLine($"baseline written: {baselinePath}");
                return 0;
            }
            using var baseline = JsonDocument.Parse(HostFiles.ReadInput(baselinePath, "baseline", 16 << 20, "16 MiB"));
            using var current = JsonDocument.Parse(text);
            var changes = MetricsComparison.Compare(baseline.RootElement, current.RootElement, threshold);
            Console.WriteLine($"against {baselinePath}:");
            MetricsComparison.Print(Console.Out, changes, threshold);
            bool failed = changes.Any(c => c.IsRegression);
            Console.WriteLine(failed ? "perf gate: FAILED" : "perf gate: passed");
            return failed ? (int)ExitStatus.Regression : 0;
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"gate: {e.Message}");
            return (int)ExitStatus.BadInput;
        }
    }

    static string? DefaultBaseline()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "perf", "gate", "baseline.json");
            if (File.Exists(candidate)) return candidate;
            if (Directory.Exists(Path.Combine(d.FullName, "perf", "gate"))) return candidate; // --update-baseline creates it
        }
        return null;
    }
}
