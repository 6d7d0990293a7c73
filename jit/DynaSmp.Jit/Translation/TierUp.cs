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
    public static long Failed;
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

    /// <summary>Compiles and publishes a block on the calling thread. A block the translator cannot lower
    /// (a translator bug) stays in tier 0 for good: slower, never wrong, never a host crash.</summary>
    public static void CompileNow(CpuCore core, Block b)
    {
        if (b.Invalid || b.Compiled != null) return;
        long allocated = TranslationCost.Begin();
        try { Compile(core, b); }
        finally { TranslationCost.End(allocated); }
    }

    static void Compile(CpuCore core, Block b)
    {
        Volatile.Write(ref b.TierUpQueued, 1);
        long t0 = Stopwatch.GetTimestamp();
        CompiledBlock compiled;
        Block[] region;
        try
        {
            region = BlockTranslator.FormRegion(core.Cache, b);
            compiled = BlockTranslator.Translate(core, region);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref Failed);
            Trace.TraceError($"DynaSmp: translating the block at 0x{b.Rip:x} failed, it stays interpreted: {e}");
            return;
        }
        Interlocked.Add(ref CompileTicks, Stopwatch.GetTimestamp() - t0);
        Interlocked.Increment(ref Compiled);
        if (!core.Cache.RegisterRegion(b, region)) { compiled.Unlink(); return; } // a member changed meanwhile
        Interlocked.Increment(ref core.Cache.Compilations);
        b.Compiled = compiled;
        if (b.Invalid) compiled.Unlink(); // lost a race with invalidation: never enter it
    }

    static void Work()
    {
        foreach (var (core, block) in Queue.GetConsumingEnumerable())
        {
            CompileNow(core, block);
        }
    }
}
