using System.Runtime.InteropServices;

namespace DynaSmp.Cli;

/// <summary>
/// Runtime settings that only the environment can give, read once at runtime start-up. The CLI starts itself again
/// through execve (same PID, stdio, parent and signals) with those the user did not set:
/// <list type="bullet">
/// <item><c>DOTNET_EnableWriteXorExecute=0</c>. W^X (on by default since .NET 7) maps every page of new host code writable
/// in a second view and unmaps it after the write: each DynamicMethod the translator compiles costs mmap/munmap calls and
/// a TLB shootdown that interrupts the vCPU threads.</item>
/// <item><c>DOTNET_TC_CallCountingDelayMs=0</c>. The runtime promotes a method past its precompiled (ReadyToRun) or
/// tier-0 code only after 100 ms without a new method starting; a booting guest keeps reaching new emulator paths, so the
/// interpreter and the dispatcher stayed in ReadyToRun code (no inlining across assemblies) for most of a boot.</item>
/// <item><c>DOTNET_TC_CallCountThreshold=2000</c> (hexadecimal: 8,192 calls). The runtime recompiles a precompiled or
/// tier-0 method optimised once it has been called 30 times; a Debian boot reaches so much of the emulator that the
/// runtime's one tiering thread recompiled 1,298 methods, most of them rarely called, and took a host core from the boot's
/// first second, when the BSP and the translator's compile thread already share the two. At 8,192 calls it recompiles 528;
/// the hot ones are called millions of times and promoted as early as before, to the eye.</item>
/// <item><c>DOTNET_JitAlignLoopMinBlockWeight=0</c>. RyuJIT aligns a loop only when its block weight says it is hot, and a
/// DynamicMethod has no weights: a translated loop's speed depended on where its code landed (docs/ARCHITECTURE.md,
/// Figures: AluLoop10Ilp 5,800 against 9,500 MIPS).</item>
/// <item><c>DOTNET_GCgen0size=8000000</c> (hexadecimal: a 128 MiB young generation). A Debian boot allocates about 120 MiB
/// (decoded blocks, IL, RyuJIT's side); with the default budget it made 20 gen0, 12 gen1 and 5 gen2 collections that
/// stopped every vCPU thread for 229 ms in all, with this one 2 collections and 4.6 ms (resident memory 311 -> 344 MiB).</item>
/// </list>
/// </summary>
/// <remarks>PERF: Debian 12 <c>--smp 4</c>, time to the init's first line, rounds in turns. W^X: 5.16 s with it, 4.70 s
/// without (medians of 4; process CPU 9.66 s against 8.75 s). The delay, with W^X off: 5.84 -> 5.16 s and 4.97 -> 4.89 s
/// (medians of two sets of 8; minima 4.68 -> 4.72 and 4.77 -> 4.38 s); in a profile of the BSP's thread, ReadyToRun code
/// went from 32% of its samples to 1%. Loop alignment, with both: 4.34 -> 4.26 s (medians of 6; minima 4.27 -> 4.19 s), and
/// the perf/workloads geomean 0.972x the time (smp-32 0.319 -> 0.209 s, smp-64 0.219 -> 0.137 s; one `bench` run each). The
/// start-up the second runtime repeats costs about 0.05 s. The call-count threshold is a small gain: set from outside, 7.03 ->
/// 6.88 s (medians of 8), 7.14 -> 6.93 s and 7.05 -> 6.95 s; through this restart, 6.08 -> 6.02 s (medians of 10), 7.25 ->
/// 7.19 s and 7.06 -> 7.08 s (of 6). Process CPU fell in every set (0.1-0.5 s), and the GC's pauses with it (3 gen2
/// collections and 45 ms to 2 and 3 ms: fewer methods recompiled, less allocated). 512 calls did less (7.14 -> 7.02 s),
/// 65,535 no better (7.05 -> 7.00 s). perf/workloads (`bench --no-qemu --runs 3`, two alternated runs each, best per
/// workload): geomean 0.902x the time, 26 of 28 workloads faster (sieve-32 0.805 -> 0.609 s, qsort-64 0.334 -> 0.271 s).</remarks>
static class RuntimeSettings
{
    const string WriteXorExecuteVariable = "DOTNET_EnableWriteXorExecute";
    const string CallCountingDelayVariable = "DOTNET_TC_CallCountingDelayMs";
    const string LoopAlignmentVariable = "DOTNET_JitAlignLoopMinBlockWeight";
    const string CallCountThresholdVariable = "DOTNET_TC_CallCountThreshold";
    const string Gen0SizeVariable = "DOTNET_GCgen0size";

    /// <summary>What the restart sets, each unless the user set it (the runtime reads these values as hexadecimal).</summary>
    static readonly (string Variable, string Value)[] Wanted =
    [
        (WriteXorExecuteVariable, "0"), (CallCountingDelayVariable, "0"), (LoopAlignmentVariable, "0"), (Gen0SizeVariable, "8000000"),
        (CallCountThresholdVariable, "2000"),
    ];

    /// <summary>Whether this runtime started with W^X (what the runtime read from the environment).</summary>
    public static bool WriteXorExecute => Knob(WriteXorExecuteVariable) is not { } v || v != "0";

    /// <summary>The runtime's call-counting delay in ms as it started (100 unless the environment said otherwise; the
    /// runtime parses the value as hexadecimal).</summary>
    public static int CallCountingDelayMs =>
        HexKnob(CallCountingDelayVariable) is { } ms ? (int)ms : 100;

    /// <summary>Calls after which the runtime recompiles one of the emulator's methods optimised, as it started (30 unless the
    /// environment said otherwise, in hexadecimal; the runtime takes at least 1 and at most 65,535).</summary>
    public static int CallCountThreshold =>
        HexKnob(CallCountThresholdVariable) is { } n ? (int)Math.Clamp(n, 1, ushort.MaxValue) : 30;

    /// <summary>Whether RyuJIT aligns every loop (the variable is 0), not only those its block weights call hot.</summary>
    public static bool AlignsEveryLoop => Knob(LoopAlignmentVariable) == "0";

    /// <summary>The young generation's budget in MiB the environment gave the GC (hexadecimal bytes), or 0 for its own.</summary>
    public static long Gen0SizeMib =>
        HexKnob(Gen0SizeVariable) is { } bytes ? bytes >> 20 : 0;

    /// <summary>A knob's value as the runtime parses it (hexadecimal), or null when unset or not a number.</summary>
    static long? HexKnob(string dotnetName) =>
        Knob(dotnetName) is { } v && long.TryParse(v, System.Globalization.NumberStyles.HexNumber, null, out long n) ? n : null;

    /// <summary>The runtime reads DOTNET_X, then the legacy COMPlus_X.</summary>
    static string? Knob(string dotnetName) =>
        Environment.GetEnvironmentVariable(dotnetName) ?? Environment.GetEnvironmentVariable("COMPlus_" + dotnetName["DOTNET_".Length..]);

    /// <summary>Replaces this process by the same command line with the settings above; returns only when it did not (not
    /// Linux, the user set them all, or execve failed), and the command then runs here as it is.</summary>
    public static void StartAgainIfNeeded()
    {
        // The host's own path, not /proc/self/exe: the kernel names the process after the file (ps would show "exe").
        if (!OperatingSystem.IsLinux() || Environment.ProcessPath is not { } host) return;
        var add = new List<string?>();
        foreach (var (variable, value) in Wanted) if (Knob(variable) == null) add.Add($"{variable}={value}");
        if (add.Count == 0) return;
        string[] argv;
        try { argv = File.ReadAllText("/proc/self/cmdline").Split('\0'); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        if (argv.Length < 2 || argv[^1] != "") return; // the kernel ends every argument, the last too, with NUL
        var args = new string?[argv.Length];
        Array.Copy(argv, args, argv.Length - 1);
        var env = new List<string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) env.Add($"{e.Key}={e.Value}");
        env.AddRange(add);
        env.Add(null);
        RemoveDiagnosticSocket();
        execve(host, args, env.ToArray());
        // Still here: execve failed and changed nothing; run with the runtime's defaults.
    }

    /// <summary>The diagnostics server of the runtime being replaced made /tmp/dotnet-diagnostic-PID-*-socket and will not
    /// remove it (its shutdown never runs); the next runtime makes its own under the same PID.</summary>
    static void RemoveDiagnosticSocket()
    {
        try
        {
            string dir = Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } t ? t : "/tmp";
            foreach (var f in Directory.EnumerateFiles(dir, $"dotnet-diagnostic-{Environment.ProcessId}-*-socket")) File.Delete(f);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [DllImport("libc", EntryPoint = "execve", SetLastError = true)]
    static extern int execve(string path, string?[] argv, string?[] envp);
}
