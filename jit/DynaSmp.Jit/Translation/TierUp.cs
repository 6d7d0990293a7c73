using System.Collections.Concurrent;
using System.Diagnostics;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Tier-up: hot blocks are compiled to IL on one background thread and published when ready, so a
/// vCPU never waits 50-150 us for RyuJIT; it keeps interpreting the block meanwhile.
/// </summary>
/// <remarks>A booting kernel queues thousands of lukewarm regions at 1-3 ms of RyuJIT each, more than one compile thread
/// keeps up with; first come, first served left its hottest loops interpreted for seconds behind them. So the queue
/// (<see cref="TierUpQueue{T}"/>) hands out the block interpreted most since it was queued (<see cref="Rank"/>).</remarks>
public static class TierUp
{
    static readonly TierUpQueue<(CpuCore Core, Block Block)> Queue = new(Rank, Release);
    static readonly Thread Worker = StartWorker();

    /// <summary>Interpretations after which a block looks for a translation of the same instructions that another VM, or an
    /// earlier run in this process, already made (<see cref="AdoptShared"/>), long before the tier-up threshold.</summary>
    public const int SharedProbeAt = 32;

    /// <summary>Blocks that took a translation from <see cref="SharedTranslations"/> at <see cref="SharedProbeAt"/>.</summary>
    public static long SharedAdopted;
    /// <summary>Early probes made (<see cref="AdoptShared"/>): skipped while only the probing VM has compiled anything.</summary>
    public static long SharedProbes;
    /// <summary>Lean regions promoted to full ones, and promotions refused because the full region was no bigger.</summary>
    public static long Promoted, PromotionsRefused;

    /// <summary>With <see cref="JitOptions.ProfileFallbacks"/>: compile cost by region size in blocks (the index).</summary>
    public static readonly RegionCost[] ProfileBySize = new RegionCost[BlockTranslator.MaxRegionBlocks + 1];

    /// <summary>Regions of one size compiled so far: how many, their compile time, guest instructions and IL bytes.</summary>
    public struct RegionCost
    {
        public long Regions, Ticks, Instructions, IlBytes;
    }

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
        b.QueuedAtCount = b.ExecCount;
        if (core.Options.CompileSynchronously) CompileNow(core, b);
        else Queue.Add((core, b));
    }

    /// <summary>Shared code needs no compile, so waiting for the threshold only costs interpretations: a fleet of VMs
    /// booting one image, or a benchmark's second run, spent most of a short run in tier 0 before it took code that
    /// was already there. Forms the region the block would get and installs the shared method on a hit, on the vCPU's
    /// own thread (a lookup, no RyuJIT); a miss changes nothing and the threshold applies as before.</summary>
    public static void AdoptShared(CpuCore core, Block b)
    {
        if (!SharedTranslations.Enabled || b.Compiled != null || b.Invalid || Volatile.Read(ref b.TierUpQueued) != 0) return;
        if (!SharedTranslations.Contributors.HoldsOthersThan(core.Cache.Id)) return; // only this VM's own code is there
        Interlocked.Increment(ref SharedProbes);
        bool full = b.FullRegion;
        var region = BlockTranslator.FormRegion(core.Cache, b, full);
        if (BlockTranslator.TryShared(core, region, counted: !full) is not { } compiled) return;
        if (Interlocked.Exchange(ref b.TierUpQueued, 1) != 0 || !core.Cache.RegisterRegion(b, region)) { compiled.Unlink(); return; }
        Interlocked.Increment(ref SharedAdopted);
        b.Compiled = compiled;
        if (b.Invalid) compiled.Unlink(); // lost a race with invalidation: never enter it
    }

    /// <summary>A lean region's entry countdown ran out (<see cref="CompiledBlock.ExitPromote"/>): its head is compiled
    /// again with a full region (<see cref="Block.FullRegion"/>), queued with first compiles (<see cref="Rank"/>). The lean
    /// code keeps running until the full code replaces it.</summary>
    /// <remarks>PERF: a promotion runs code that is already compiled, a first compile code that is still interpreted,
    /// 20-50x slower, so a promotion no longer jumps the queue: the full regions are the biggest compiles (16 blocks,
    /// 5-10 ms each), and expedited they held back the first compiles of whatever the vCPU ran next. At default counts,
    /// 5 alternated runs: fpprint 0.684 -> 0.595 s (32-bit) and 0.627 -> 0.570 s (64-bit), nbody 0.344 -> 0.302 s and
    /// 0.325 -> 0.290 s (minima); the other workloads and a Debian boot did not move beyond noise.</remarks>
    public static void Promote(CpuCore core, Block b)
    {
        if (b.Compiled is not { } lean || !lean.Code.Counted) return;
        lean.StopCountdown();
        if (b.FullRegion || b.Invalid) return;
        b.FullRegion = true;
        Interlocked.Increment(ref Promoted);
        if (core.Options.CompileSynchronously) CompileNow(core, b);
        else Queue.Add((core, b));
    }

    /// <summary>Compiles and publishes a block on the calling thread. A block the translator cannot lower
    /// (a translator bug) stays in tier 0 for good: slower, never wrong, never a host crash.</summary>
    public static void CompileNow(CpuCore core, Block b)
    {
        if (b.Invalid || (b.Compiled is { } done && !(b.FullRegion && done.Code.Counted))) return;
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
        var lean = b.Compiled;
        bool full = b.FullRegion; // one decision for the region's members and for counting its entries
        try
        {
            region = BlockTranslator.FormRegion(core.Cache, b, full);
            if (lean != null && region.Length <= lean.RegionBlocks) { Interlocked.Increment(ref PromotionsRefused); return; } // nothing to gain
            compiled = BlockTranslator.Translate(core, region, counted: !full);
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
            ref var cost = ref ProfileBySize[region.Length];
            Interlocked.Increment(ref cost.Regions);
            Interlocked.Add(ref cost.Ticks, took);
            Interlocked.Add(ref cost.Instructions, insns);
            Interlocked.Add(ref cost.IlBytes, compiled.Code.IlBytes);
        }
        Interlocked.Increment(ref Compiled);
        if (!core.Cache.RegisterRegion(b, region)) { compiled.Unlink(); return; } // a member changed meanwhile
        Interlocked.Increment(ref core.Cache.Compilations);
        b.Compiled = compiled;
        lean?.Unlink(); // jumps into the lean code come back through the dispatcher and link to the full code
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

    /// <summary>A first compile that went cold in the queue goes back to counting: it is queued again if it reaches the
    /// threshold again. Promotions stay (their lean code runs meanwhile).</summary>
    internal static bool Release((CpuCore Core, Block Block) item)
    {
        var b = item.Block;
        if (b.Compiled != null || b.Invalid) return false;
        b.ExecCount = 0; // racy with the vCPUs' increments: a lost one only delays the next queueing
        Volatile.Write(ref b.TierUpQueued, 0);
        Interlocked.Increment(ref ReleasedCold);
        return true;
    }

    /// <summary>First compiles that went cold while queued and went back to counting (<see cref="Release"/>).</summary>
    public static long ReleasedCold;

    /// <summary>Where a queued block stands in the compile queue: first those with nothing left to compile (done, or
    /// invalidated), then by the interpretations since it was queued, which is the vCPU time its compile will save from
    /// now on, roughly. A promotion (its lean code already runs) ranks as a block interpreted for one threshold's worth.</summary>
    /// <remarks>PERF: Debian's kernel at --smp 4, 6 rounds in turns against arrival order with expediting at 8x the
    /// threshold: time to the init's first line 5.77 -> 5.29 s (medians), regions compiled 5,105 -> 3,676, blocks
    /// interpreted 17.7M -> 14.1M. Blocks that went cold leave the queue (<see cref="Release"/>). A score decayed at every take (the recent rate) did worse than the plain count: 18.5M interpretations.</remarks>
    internal static long Rank((CpuCore Core, Block Block) item)
    {
        var (core, b) = item;
        if (b.Invalid) return long.MaxValue;
        if (b.Compiled is { } compiled)
            return b.FullRegion && compiled.Code.Counted ? core.Options.TierUpThreshold : long.MaxValue;
        return (long)b.ExecCount - b.QueuedAtCount;
    }
}

/// <summary>The compile thread's work list: each take hands out the item of highest rank at that moment (ranks change while
/// items wait), the earliest queued among equals; on a list longer than <see cref="ScanShare"/>, one reading of the ranks
/// serves the next few takes. An item that has waited <see cref="ColdAfter"/> takes or more and
/// ranks below one per <see cref="ColdRate"/> takes waited has gone cold: it leaves the list if <c>release</c> agrees.</summary>
/// <remarks>Earlier orders, measured on kernel boots: arrival order left hot loops interpreted for seconds behind lukewarm
/// blocks; newest first and "expedite a block still interpreted at 8x the threshold" each helped a little. Ranking by
/// the interpretations since queueing subsumes both (see <see cref="TierUp.Rank"/>).</remarks>
public sealed class TierUpQueue<T>(Func<T, long> rank, Func<T, bool> release)
{
    public const int ColdAfter = 64, ColdRate = 16;

    // vCPUs add through a concurrent queue (amortised segment allocation, no per-item node: the run loop allocates
    // nothing in steady state); the single consumer moves items into its own list, in arrival order, and reads their ranks
    // when its batch (_ready) is empty. PERF: releasing cold items keeps the reading to what is still running; with every
    // item kept, a kernel boot at a threshold of 100 spent 10% of the compile thread reading ranks.
    readonly ConcurrentQueue<T> _incoming = new();
    readonly List<(T Item, long Take)> _waiting = new();
    readonly SemaphoreSlim _pending = new(0);
    long _takes;
    // PERF: a scan of n items hands out its best ceil(n / ScanShare) in rank order before the next scan, so reading ranks
    // costs about ScanShare per take on a long list; a list of up to ScanShare items is read again at every take.
    public const int ScanShare = 256, MaxScanHandout = 64;
    const long HandedOut = -1; // a Take that marks an entry the reading put in the batch
    readonly Queue<T> _ready = new();

    public void Add(T item) { _incoming.Enqueue(item); _pending.Release(); }

    /// <summary>Items on the list now, and those the last scan handed out and the next takes return (consumer thread only).</summary>
    public int Waiting => _waiting.Count + _ready.Count;

    /// <summary>Blocks until an item is there. One consumer only.</summary>
    public T Take()
    {
        while (true)
        {
            _pending.Wait();
            if (TryNext(out var item)) return item;
        }
    }

    /// <summary>The next item if one is there now. One consumer only.</summary>
    public bool TryTake(out T item)
    {
        while (_pending.Wait(0))
            if (TryNext(out item)) return true;
        item = default!;
        return false;
    }

    // The caller took one count from the semaphore; every item on the list or handed out from the last scan holds one (or
    // will: a vCPU releases just after it enqueues). Items released here take theirs too, so the count stays the number of
    // items.
    bool TryNext(out T item)
    {
        _takes++;
        if (_ready.TryDequeue(out item!)) return true;
        while (_incoming.TryDequeue(out var x)) _waiting.Add((x, _takes - 1));
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_waiting);
        // The best `want` by rank, best first; among equals the earlier queued (the scan is in arrival order).
        int want = Math.Min(1 + (span.Length - 1) / ScanShare, MaxScanHandout);
        Span<(long Rank, int Index)> best = stackalloc (long, int)[want];
        int found = 0, kept = 0, released = 0;
        for (int k = 0; k < span.Length; k++)
        {
            var entry = span[k];
            long r = rank(entry.Item);
            long waited = _takes - entry.Take;
            if (waited >= ColdAfter && r < waited / ColdRate && release(entry.Item)) { released++; continue; }
            span[kept] = entry;
            if (found < want || r > best[found - 1].Rank)
            {
                int at = found < want ? found++ : found - 1;
                while (at > 0 && best[at - 1].Rank < r) { best[at] = best[at - 1]; at--; }
                best[at] = (r, kept);
            }
            kept++;
        }
        for (int n = 0; n < found; n++)
        {
            ref var chosen = ref span[best[n].Index];
            _ready.Enqueue(chosen.Item);
            chosen.Take = HandedOut;
        }
        _waiting.RemoveRange(kept, span.Length - kept);
        _waiting.RemoveAll(static e => e.Take == HandedOut);
        item = default!;
        if (found > 0) item = _ready.Dequeue();
        else if (released > 0) released--; // the caller's count was one of theirs
        else throw new InvalidOperationException("tier-up queue: a wait succeeded with nothing queued");
        for (; released > 0; released--) _pending.Wait(); // at once, or as soon as the vCPU that queued it releases
        return found > 0;
    }
}
