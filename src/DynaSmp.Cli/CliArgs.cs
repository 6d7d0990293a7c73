using System.Globalization;

namespace DynaSmp.Cli;

/// <summary>A bad command line: printed as one clear line (no stack trace), exit status 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Minimal option parsing: `--name value` or `--name=value`, switches without a value, positionals, and
/// strict validation.</summary>
public sealed class CliArgs
{
    readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);
    readonly HashSet<string> _switches = new(StringComparer.Ordinal);
    readonly HashSet<string> _used = new(StringComparer.Ordinal);
    public List<string> Positionals { get; } = new();

    public CliArgs(IEnumerable<string> args, IReadOnlySet<string> known, IReadOnlySet<string>? switches = null)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            string a = e.Current;
            if (!a.StartsWith("--", StringComparison.Ordinal)) { Positionals.Add(a); continue; }
            if (switches != null && switches.Contains(a))
            {
                if (!_switches.Add(a)) throw new UsageException($"option {a} given twice");
                continue;
            }
            string name = a, value;
            int eq = a.IndexOf('=');
            if (eq > 0) { name = a[..eq]; value = a[(eq + 1)..]; }
            else
            {
                if (!known.Contains(name)) throw new UsageException($"unknown option {name}");
                if (!e.MoveNext()) throw new UsageException($"option {name} needs a value");
                value = e.Current;
            }
            if (switches != null && switches.Contains(name)) throw new UsageException($"option {name} takes no value");
            if (!known.Contains(name)) throw new UsageException($"unknown option {name}");
            if (!_options.TryAdd(name, value)) throw new UsageException($"option {name} given twice");
        }
    }

    /// <summary>A switch (an option without a value) was given.</summary>
    public bool Switch(string name) => _switches.Contains(name);

    public string? String(string name) { _used.Add(name); return _options.TryGetValue(name, out var v) ? v : null; }

    public int Int(string name, int fallback, int min, int max)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min || v > max)
            throw new UsageException($"{name} must be an integer from {min} to {max} (got '{s}')");
        return v;
    }

    public double Seconds(string name, double fallback)
    {
        var s = String(name);
        if (s == null) return fallback;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !(v > 0) || v > 86400)
            throw new UsageException($"{name} must be a number of seconds above 0 (got '{s}')");
        return v;
    }

    /// <summary>A memory size: plain numbers are MiB (as QEMU's -m); suffixes K, M, G (optionally with iB or B).</summary>
    public ulong Size(string name, ulong fallback)
    {
        var s = String(name);
        if (s == null) return fallback;
        string t = s.Trim().ToUpperInvariant();
        ulong unit = 1UL << 20;
        foreach (var (suffix, u) in new[] { ("KIB", 1UL << 10), ("MIB", 1UL << 20), ("GIB", 1UL << 30), ("KB", 1UL << 10), ("MB", 1UL << 20), ("GB", 1UL << 30), ("K", 1UL << 10), ("M", 1UL << 20), ("G", 1UL << 30) })
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal)) { unit = u; t = t[..^suffix.Length]; break; }
        }
        if (!ulong.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong n) || n == 0 || n > (1UL << 40) / unit)
            throw new UsageException($"{name}: '{s}' is not a memory size (examples: 256, 256M, 1G)");
        return n * unit;
    }

    public T Choice<T>(string name, T fallback, params (string Text, T Value)[] choices)
    {
        var s = String(name);
        if (s == null) return fallback;
        foreach (var (text, value) in choices) if (string.Equals(text, s, StringComparison.OrdinalIgnoreCase)) return value;
        throw new UsageException($"{name} must be one of {string.Join(", ", choices.Select(c => c.Text))} (got '{s}')");
    }

    public void ExpectPositionals(int count, string usage)
    {
        if (Positionals.Count != count) throw new UsageException($"usage: {usage}");
    }
}
