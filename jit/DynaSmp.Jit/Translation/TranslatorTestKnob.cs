using System.Diagnostics;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// A test-only knob that makes the tier-1 translator slower by a given percentage, so the perf gate can show it catches
/// a translator regression. Set DYNASMP_TEST_SLOW_TRANSLATOR=PCT in the environment of the process under test. Off (the
/// default) it costs nothing: <see cref="Enabled"/> is a static readonly false that RyuJIT folds away.
/// </summary>
public static class TranslatorTestKnob
{
    public const string EnvironmentVariable = "DYNASMP_TEST_SLOW_TRANSLATOR";

    public static readonly int SlowdownPercent = Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));
    public static readonly bool Enabled = SlowdownPercent > 0;

    static int Parse(string? text) => int.TryParse(text, out int pct) && pct > 0 && pct <= 1000 ? pct : 0;

    /// <summary>Spins until the translation that began at <paramref name="startTimestamp"/> has taken
    /// (100 + SlowdownPercent)% of the time it really took.</summary>
    public static void Stall(long startTimestamp)
    {
        long took = Stopwatch.GetTimestamp() - startTimestamp;
        long until = Stopwatch.GetTimestamp() + took * SlowdownPercent / 100;
        while (Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
    }
}
