using System.Text.Json;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp compare BASE.json NEW.json [--threshold PCT]`: what moved between two `--stats` files (or two perf
/// gate results); exit status 12 on a regression (<see cref="MetricsComparison"/> says what counts as one).</summary>
static class CompareCommand
{
    const string Usage = "dynasmp compare BASE.json NEW.json [--threshold PCT]";

    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--threshold" });
        a.ExpectPositionals(2, Usage);
        double threshold = a.String("--threshold") is { } t ? CompareCommandPercent.Parse(t) : 0;
        using var baseline = Read(a.Positionals[0]);
        using var current = Read(a.Positionals[1]);
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
