using System.Collections.Concurrent;
using System.Diagnostics;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Tier-up: hot blocks are compiled to IL on one background thread and published when ready, so a
/// vCPU never waits 50-150 us for RyuJIT; it keeps interpreting the block meanwhile.
/// </summary>
/// <remarks>Two queues: blocks reaching the threshold wait in arrival order, and a queued block the vCPU keeps
/// interpreting (<see cref="ExpediteAfter"/> times the threshold) jumps ahead, newest first. A booting kernel queues
/// thousands of lukewarm regions at 1-3 ms of RyuJIT each; first come, first served left its hottest loops
/// interpreted for seconds behind them.</remarks>
public static class TierUp
{
    static readonly TierUpQueue<(CpuCore Core, Block Block)> Queue = new();
    static readonly Thread Worker = StartWorker();

    /// <summary>Interpretations, in multiples of the tier-up threshold, after which a still-queued block is expedited.</summary>
    public const int ExpediteAfter = 8;

    public static long Expedited;

    /// <summary>With <see cref="JitOptions.ProfileFallbacks"/>: per region size in blocks, regions compiled, their compile
    /// ticks and guest instructions.</summary>
    public static readonly long[,] ProfileBySize = new long[BlockTranslator.MaxRegionBlocks + 1, 4];

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

    /// <summary>A queued block that is still interpreted at <see cref="ExpediteAfter"/> times the threshold goes to the
    /// front; it is compiled once (the normal queue's entry then finds it compiled).</summary>
    public static void Expedite(CpuCore core, Block b)
    {
        if (b.Compiled != null || b.Invalid || core.Options.CompileSynchronously) return;
        Interlocked.Increment(ref Expedited);
        Queue.Expedite((core, b));
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
        long took = Stopwatch.GetTimestamp() - t0;
        Interlocked.Add(ref CompileTicks, took);
        if (core.Options.ProfileFallbacks)
        {
            int insns = 0;
            foreach (var m in region) insns += m.Insns.Length;
            Interlocked.Increment(ref ProfileBySize[region.Length, 0]);
            Interlocked.Add(ref ProfileBySize[region.Length, 1], took);
            Interlocked.Add(ref ProfileBySize[region.Length, 2], insns);
            Interlocked.Add(ref ProfileBySize[region.Length, 3], BlockTranslator.LastIlBytes);
        }
        Interlocked.Increment(ref Compiled);
        if (!core.Cache.RegisterRegion(b, region)) { compiled.Unlink(); return; } // a member changed meanwhile
        Interlocked.Increment(ref core.Cache.Compilations);
        b.Compiled = compiled;
        if (b.Invalid) compiled.Unlink(); // lost a race with invalidation: never enter it
    }

    static void Work()
    {
        while (true)
        {
            var (core, block) = Queue.Take();
            CompileNow(core, block);
        }
    }
}

/// <summary>The compile thread's work list: items in arrival order, except that expedited items come first, newest
/// first (the block the vCPU is interpreting right now is the one to compile). An item may be in both lists.</summary>
public sealed class TierUpQueue<T>
{
    readonly ConcurrentQueue<T> _normal = new();
    readonly ConcurrentStack<T> _urgent = new();
    readonly SemaphoreSlim _pending = new(0);

    public void Add(T item) { _normal.Enqueue(item); _pending.Release(); }

    public void Expedite(T item) { _urgent.Push(item); _pending.Release(); }

    /// <summary>Blocks until an item is there.</summary>
    public T Take()
    {
        while (true)
        {
            _pending.Wait();
            if (_urgent.TryPop(out var item) || _normal.TryDequeue(out item)) return item;
        }
    }

    /// <summary>The next item if one is there now.</summary>
    public bool TryTake(out T item)
    {
        item = default!;
        return _pending.Wait(0) && (_urgent.TryPop(out item!) || _normal.TryDequeue(out item!));
    }
}
