using System.CommandLine;
using System.Globalization;

namespace DynaSmp.Cli;

/// <summary>A bad command line found after parsing (e.g. a value that conflicts with another): one clear line, status 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Typed System.CommandLine options with dynasmp's own value grammar (memory sizes as QEMU's -m, seconds, bounded
/// integers, named choices) and its error wording, so every command validates the same way and `--help`, shell
/// completion and errors come from one place.
/// </summary>
public static class CliOptions
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    delegate bool TextParser<T>(string text, out T value);

    /// <summary>An option whose value is parsed by <paramref name="parse"/>; a bad value is a parse error with
    /// <paramref name="error"/>'s wording, reported before the command runs.</summary>
    static Option<T> Make<T>(string name, string description, T fallback, TextParser<T> parse, Func<string, string> error, string? helpName = null)
    {
        var o = new Option<T>(name) { Description = description, DefaultValueFactory = _ => fallback, HelpName = helpName };
        o.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (parse(text, out T v)) return v;
            r.AddError(error(text));
            return fallback;
        };
        return o;
    }

    public static Option<int> Int(string name, int fallback, int min, int max, string description) =>
        Make(name, $"{description} ({min}-{max})", fallback,
            (string t, out int v) => int.TryParse(t, NumberStyles.Integer, Inv, out v) && v >= min && v <= max,
            t => $"{name} must be an integer from {min} to {max} (got '{t}')", "N");

    /// <summary>A positive number of seconds, at most a day.</summary>
    public static Option<double> Seconds(string name, double fallback, string description) =>
        Make(name, $"{description} (seconds)", fallback, TryParseSeconds,
            t => $"{name} must be a number of seconds above 0 (got '{t}')", "S");

    public static Option<ByteSize> Size(string name, ulong fallback, string description) =>
        Make(name, $"{description} (plain numbers are MiB; K/M/G suffixes)", new ByteSize(fallback),
            (string t, out ByteSize v) => { bool ok = TryParseSize(t, out ulong b); v = new ByteSize(b); return ok; },
            t => $"{name}: '{t}' is not a memory size (examples: 256, 256M, 1G)", "SIZE");

    /// <summary>One of a fixed set of words (case-insensitive), offered by shell completion.</summary>
    public static Option<Named<T>> Choice<T>(string name, string fallback, string description, params (string Text, T Value)[] choices)
    {
        string words = string.Join("|", choices.Select(c => c.Text));
        var initial = choices.Single(c => c.Text == fallback);
        var o = Make(name, description, new Named<T>(initial.Text, initial.Value), (string t, out Named<T> v) =>
        {
            foreach (var (text, value) in choices)
                if (string.Equals(text, t, StringComparison.OrdinalIgnoreCase)) { v = new Named<T>(text, value); return true; }
            v = default;
            return false;
        }, t => $"{name} must be one of {string.Join(", ", choices.Select(c => c.Text))} (got '{t}')", words);
        o.CompletionSources.Add(choices.Select(c => c.Text).ToArray());
        return o;
    }

    public static Option<string?> Text(string name, string description, string helpName = "TEXT") =>
        new(name) { Description = description, HelpName = helpName };

    /// <summary>An output file; checked (directory exists, writable, not a directory) before the run starts.</summary>
    public static Option<string?> OutputFile(string name, string description) => Text(name, description, "FILE");

    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    static bool TryParseSeconds(string text, out double v) =>
        double.TryParse(text, NumberStyles.Float, Inv, out v) && v > 0 && v <= 86400;

    /// <summary>A memory size: plain numbers are MiB (as QEMU's -m); suffixes K, M, G (optionally with iB or B).</summary>
    public static bool TryParseSize(string text, out ulong bytes)
    {
        bytes = 0;
        string t = text.Trim().ToUpperInvariant();
        ulong unit = 1UL << 20;
        foreach (var (suffix, u) in Suffixes)
            if (t.EndsWith(suffix, StringComparison.Ordinal)) { unit = u; t = t[..^suffix.Length]; break; }
        if (!ulong.TryParse(t, NumberStyles.Integer, Inv, out ulong n) || n == 0 || n > (1UL << 40) / unit) return false;
        bytes = n * unit;
        return true;
    }

    static readonly (string, ulong)[] Suffixes =
        [("KIB", 1UL << 10), ("MIB", 1UL << 20), ("GIB", 1UL << 30), ("KB", 1UL << 10), ("MB", 1UL << 20), ("GB", 1UL << 30), ("K", 1UL << 10), ("M", 1UL << 20), ("G", 1UL << 30)];

    /// <summary>`--shard I/N`: this machine runs VMs I, I+N, I+2N, ... of the fleet (the slices of N machines never overlap).</summary>
    public static Option<Shard> Shard() =>
        Make("--shard", "run the I-th of N slices of the VMs (VMs I, I+N, ...; seeds derive from the base seed and the VM number)",
            Cli.Shard.Whole, Cli.Shard.TryParse, t => $"--shard must be I/N with 0 <= I < N <= 100000 (got '{t}')", "I/N");

    /// <summary>The IPI-delay choice shared by boot, trace and guest export.</summary>
    public static Option<Named<Machine.Guests.IpiDelays>> IpiDelays() =>
        Choice("--ipi-delays", "none", "waits around the built-in guest's STARTUP IPIs (linux: 10 us before and after each, as Linux 6.x)",
            ("none", Machine.Guests.IpiDelays.None), ("linux", Machine.Guests.IpiDelays.Linux));
}

/// <summary>One slice of a fleet split across machines: VMs whose number is <see cref="Index"/> modulo <see cref="Count"/>.</summary>
public readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard Whole = new(0, 1);

    public bool Contains(int vm) => vm % Count == Index;

    /// <summary>How many of <paramref name="vms"/> VMs this slice runs.</summary>
    public int SizeOf(int vms) => vms <= Index ? 0 : (vms - Index + Count - 1) / Count;

    public static bool TryParse(string text, out Shard shard)
    {
        shard = Whole;
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > 100_000 || i >= n) return false;
        shard = new Shard(i, n);
        return true;
    }

    public override string ToString() => $"{Index}/{Count}";
}

/// <summary>A memory size as the user wrote it, shown in --help as they would write it.</summary>
public readonly record struct ByteSize(ulong Bytes)
{
    public override string ToString() => Bytes % (1UL << 30) == 0 ? $"{Bytes >> 30}G" : Bytes % (1UL << 20) == 0 ? $"{Bytes >> 20}M" : $"{Bytes >> 10}K";
}

/// <summary>A value chosen by its command-line word; --help shows the word.</summary>
public readonly record struct Named<T>(string Text, T Value)
{
    public override string ToString() => Text;
}
