using System.Collections.Concurrent;
using System.Diagnostics;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Tier-up: hot blocks are compiled to IL on one background thread and published when ready, so a
/// vCPU never waits 50-150 us for RyuJIT; it keeps interpreting the block meanwhile.
/// </summary>
public static class TierUp
{
    static readonly BlockingCollection<(CpuCore Core, Block Block)> Queue = new();
    static readonly Thread Worker = StartWorker();

    public static long Compiled;
    public static long CompileTicks;

    static Thread StartWorker()
    {
        var t = new Thread(Work, 256 * 1024) { IsBackground = true, Name = "DynaSmp tier-1 compiler", Priority = ThreadPriority.BelowNormal };
        t.Start();
        return t;
    }

    public static void Enqueue(CpuCore core, Block b)
    {
        if (Interlocked.Exchange(ref b.TierUpQueued, 1) != 0) return;
        if (core.Options.CompileSynchronously) CompileNow(core, b);
        else Queue.Add((core, b));
    }

    /// <summary>Compiles and publishes a block on the calling thread.</summary>
    public static void CompileNow(CpuCore core, Block b)
    {
        if (b.Invalid || b.Compiled != null) return;
        long t0 = Stopwatch.GetTimestamp();
        var compiled = BlockTranslator.Translate(core, b);
        Interlocked.Add(ref CompileTicks, Stopwatch.GetTimestamp() - t0);
        Interlocked.Increment(ref Compiled);
        b.Compiled = compiled;
        if (b.Invalid) compiled.Unlink(); // lost a race with invalidation: never enter it
    }

    static void Work()
    {
        foreach (var (core, block) in Queue.GetConsumingEnumerable())
        {
            try { CompileNow(core, block); }
            catch (Exception e) { Trace.TraceError($"DynaSmp: compiling block at 0x{block.Rip:x} failed: {e}"); }
        }
    }

    /// <summary>Waits until the queue is drained (tests, benchmarks).</summary>
    public static void Drain()
    {
        while (Queue.Count > 0) Thread.Sleep(1);
        Thread.Sleep(1);
    }
}
