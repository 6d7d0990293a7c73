using System.CommandLine;
using System.Text.Json;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp compare BASE.json NEW.json [--threshold PCT]`: what moved between two `--stats` files (or two perf
/// gate results); exit status 12 on a regression (<see cref="MetricsComparison"/> says what counts as one).</summary>
static class CompareCommand
{
    public static Command Create()
    {
        var basePath = new Argument<string>("BASE.json") { Description = "the baseline --stats file or perf gate result" };
        var newPath = new Argument<string>("NEW.json") { Description = "the new one" };
        var threshold = CliOptions.Text("--threshold", "percent a number may rise before it counts as a regression (default 0: exact)", "PCT");
        var c = new Command("compare", "what moved between two --stats files or perf gate results; status 12 on a regression") { basePath, newPath, threshold };
        c.SetAction(p => Run(p.GetValue(basePath)!, p.GetValue(newPath)!, p.GetValue(threshold) is { } t ? CompareCommandPercent.Parse(t) : 0));
        return c;
    }

    static int Run(string basePath, string newPath, double threshold)
    {
        using var baseline = Read(basePath);
        using var current = Read(newPath);
        string? s0 = Schema(baseline.RootElement), s1 = Schema(current.RootElement);
        if (s0 != s1) throw new UsageException($"the files hold different kinds of results ({s0 ?? "no schema"} and {s1 ?? "no schema"})");
        var changes = MetricsComparison.Compare(baseline.RootElement, current.RootElement, threshold);
        MetricsComparison.Print(Console.Out, changes, threshold);
        return changes.Any(c => c.IsRegression) ? (int)ExitStatus.Regression : (int)ExitStatus.Success;
    }

    static JsonDocument Read(string path)
    {
        var bytes = HostFiles.ReadInput(path, "result file", 256L << 20, "256 MiB");
        try { return JsonDocument.Parse(bytes); }
        catch (JsonException e) { throw new UsageException($"{path}: not a JSON result file ({e.Message})"); }
    }

    static string? Schema(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty("schema", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
}

/// <summary>The `--threshold PCT` value of compare and the perf gate.</summary>
public static class CompareCommandPercent
{
    public static double Parse(string text)
    {
        if (!double.TryParse(text.TrimEnd('%'), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v) || !(v >= 0) || v > 1000)
            throw new UsageException($"--threshold must be a percentage from 0 to 1000 (got '{text}')");
        return v;
    }
}
