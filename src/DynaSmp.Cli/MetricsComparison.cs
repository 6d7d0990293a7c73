using System.Globalization;
using System.Text.Json;

namespace DynaSmp.Cli;

/// <summary>How one metric moved between two result files.</summary>
public enum MetricVerdict { Same, WithinThreshold, Down, Regressed, Changed, OnlyInBase, OnlyInNew }

public sealed record MetricChange(string Path, string? Base, string? New, double? ChangePercent, MetricVerdict Verdict)
{
    /// <summary>Fails the comparison: a number went up past the threshold, or a value or the structure changed.</summary>
    public bool IsRegression => Verdict is MetricVerdict.Regressed or MetricVerdict.Changed or MetricVerdict.OnlyInBase or MetricVerdict.OnlyInNew;
}

/// <summary>
/// Compares two result files (`--stats`, the perf gate's ratios) leaf by leaf. Every number is a cost, lower is better:
/// counts of guest events and DynaSmp/reference time ratios. A number that went up by more than the threshold is a
/// regression (with threshold 0, by anything: deterministic counts are compared exactly); one that went down is
/// reported, not failed. A text or boolean that differs, or a leaf present on one side only, is a regression too.
/// Objects named <c>host</c> hold host-time figures that vary with the machine's load: they are skipped.
/// </summary>
public static class MetricsComparison
{
    public const string HostSection = "host";

    public static List<MetricChange> Compare(JsonElement baseline, JsonElement current, double thresholdPercent)
    {
        var a = Flatten(baseline);
        var b = Flatten(current);
        var changes = new List<MetricChange>();
        foreach (var (path, av) in a)
        {
            if (!b.TryGetValue(path, out var bv)) { changes.Add(new(path, Text(av), null, null, MetricVerdict.OnlyInBase)); continue; }
            changes.Add(Judge(path, av, bv, thresholdPercent));
        }
        foreach (var (path, bv) in b)
            if (!a.ContainsKey(path)) changes.Add(new(path, null, Text(bv), null, MetricVerdict.OnlyInNew));
        return changes;
    }

    static MetricChange Judge(string path, JsonElement av, JsonElement bv, double threshold)
    {
        if (av.ValueKind == JsonValueKind.Number && bv.ValueKind == JsonValueKind.Number)
        {
            double x = av.GetDouble(), y = bv.GetDouble();
            if (x == y) return new(path, Text(av), Text(bv), 0, MetricVerdict.Same);
            double? pct = x != 0 ? (y - x) / Math.Abs(x) * 100 : null;
            var verdict = pct is { } p && Math.Abs(p) <= threshold ? MetricVerdict.WithinThreshold
                : y > x ? MetricVerdict.Regressed : MetricVerdict.Down;
            return new(path, Text(av), Text(bv), pct, verdict);
        }
        bool same = av.ValueKind == bv.ValueKind && av.GetRawText() == bv.GetRawText();
        return new(path, Text(av), Text(bv), null, same ? MetricVerdict.Same : MetricVerdict.Changed);
    }

    /// <summary>Leaves by path (`vms[0].vcpus[1].retired`), in document order, without the host sections.</summary>
    public static Dictionary<string, JsonElement> Flatten(JsonElement root)
    {
        var leaves = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        Walk(root, "", leaves);
        return leaves;
    }

    static void Walk(JsonElement e, string path, Dictionary<string, JsonElement> leaves)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                    if (p.Name != HostSection) Walk(p.Value, path.Length == 0 ? p.Name : $"{path}.{p.Name}", leaves);
                break;
            case JsonValueKind.Array:
                int k = 0;
                foreach (var item in e.EnumerateArray()) Walk(item, $"{path}[{k++}]", leaves);
                break;
            default:
                leaves[path] = e;
                break;
        }
    }

    static string Text(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();

    /// <summary>The table of what moved (at most <paramref name="maxRows"/> rows), then one summary line.</summary>
    public static void Print(TextWriter w, IReadOnlyList<MetricChange> changes, double thresholdPercent, int maxRows = 60)
    {
        var moved = changes.Where(c => c.Verdict != MetricVerdict.Same).OrderByDescending(c => c.IsRegression).ToList();
        if (moved.Count > 0)
        {
            int pw = Math.Min(60, Math.Max(6, moved.Max(c => c.Path.Length)));
            w.WriteLine($"{"metric".PadRight(pw)}  {"base",14}  {"new",14}  {"change",9}  verdict");
            foreach (var c in moved.Take(maxRows))
            {
                string pct = c.ChangePercent is { } p ? p.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture) + "%" : "";
                w.WriteLine($"{Fit(c.Path, pw).PadRight(pw)}  {Fit(c.Base ?? "-", 14),14}  {Fit(c.New ?? "-", 14),14}  {pct,9}  {Describe(c.Verdict)}");
            }
            if (moved.Count > maxRows) w.WriteLine($"... and {moved.Count - maxRows} more");
        }
        int regressions = changes.Count(c => c.IsRegression);
        w.WriteLine($"{changes.Count} metrics compared (threshold {thresholdPercent.ToString(CultureInfo.InvariantCulture)}%): " +
            $"{changes.Count(c => c.Verdict == MetricVerdict.Same)} same, {changes.Count(c => c.Verdict == MetricVerdict.WithinThreshold)} within the threshold, " +
            $"{changes.Count(c => c.Verdict == MetricVerdict.Down)} down, {regressions} regressed or changed");
    }

    static string Fit(string s, int width) => s.Length <= width ? s : "..." + s[^(width - 3)..];

    static string Describe(MetricVerdict v) => v switch
    {
        MetricVerdict.WithinThreshold => "within threshold",
        MetricVerdict.Down => "down",
        MetricVerdict.Regressed => "REGRESSED (up)",
        MetricVerdict.Changed => "CHANGED",
        MetricVerdict.OnlyInBase => "MISSING in new",
        MetricVerdict.OnlyInNew => "NEW (not in base)",
        _ => "same",
    };
}
