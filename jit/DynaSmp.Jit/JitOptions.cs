namespace DynaSmp.Jit;

/// <summary>Translation knobs. Defaults come from the measurements in docs/ARCHITECTURE.md.</summary>
public sealed record JitOptions
{
    public const int MaxBlockInstructions = 64;

    /// <summary>Tier-0 executions of a block before it is compiled to IL (0 = never compile). The
    /// DYNASMP_TIERUP_THRESHOLD environment variable overrides the default, for measurements.</summary>
    public int TierUpThreshold { get; init; } = DefaultThreshold;

    static readonly int DefaultThreshold =
        int.TryParse(Environment.GetEnvironmentVariable("DYNASMP_TIERUP_THRESHOLD"), out int t) && t >= 0 ? t : 100;

    /// <summary>Compile on the vCPU thread instead of the background compiler (tests and benchmarks).</summary>
    public bool CompileSynchronously { get; init; }

    /// <summary>Chain compiled blocks with tail calls through function pointers (falls back to the dispatcher if unavailable).</summary>
    public bool Chaining { get; init; } = true;

    /// <summary>Translated code also honours Run's instruction budget at block boundaries (one more compare per
    /// chained exit and loop back-edge). Deterministic scheduling needs it; free-running vCPUs do not.</summary>
    public bool BoundedRuns { get; init; }

    /// <summary>Count tier-0 calls from translated code per instruction form (<see cref="CpuCore.TierZeroCalls"/>): a profile of
    /// what tier 1 does not lower. Off by default; on when the DYNASMP_PROFILE_FALLBACKS environment variable is 1.</summary>
    public bool ProfileFallbacks { get; init; } = Environment.GetEnvironmentVariable("DYNASMP_PROFILE_FALLBACKS") == "1";

    public static readonly JitOptions Default = new();
    public static readonly JitOptions InterpretOnly = new() { TierUpThreshold = 0 };
    /// <summary>Compile every block before its first run: translated code only, no tier 0.</summary>
    public static readonly JitOptions CompileFirst = new() { TierUpThreshold = 1, CompileSynchronously = true };
}
