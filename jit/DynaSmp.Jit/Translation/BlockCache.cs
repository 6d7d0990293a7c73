using System.Collections.Concurrent;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Translations of one guest-physical address space, shared by all its vCPUs. Keyed by physical address
/// plus the mode bits that change decoding; a write to a page holding code invalidates that page's blocks.
/// </summary>
public sealed class BlockCache(GuestRam ram)
{
    readonly ConcurrentDictionary<BlockKey, Block> _blocks = new();
    // Blocks per physical page, for invalidation. Guarded by _pagesLock: touched only on translate/invalidate.
    readonly Dictionary<ulong, List<Block>> _pages = new();
    readonly Lock _pagesLock = new();
    readonly List<CpuCore> _cpus = new();

    static int s_nextId;
    /// <summary>This address space's number in the process (from 1), for <see cref="TranslationContributors"/>.</summary>
    internal int Id { get; } = Interlocked.Increment(ref s_nextId);

    public GuestRam Ram => ram;
    /// <summary>Compile hot blocks together with the blocks they branch to in the same page (regions).</summary>
    public bool Regions { get; set; } = true;
    public long Invalidations;
    public long Translations;
    /// <summary>Tier-1 compilations published into this cache (regions count once).</summary>
    public long Compilations;

    internal void Register(CpuCore cpu)
    {
        lock (_pagesLock) _cpus.Add(cpu);
    }

    public Block? Find(ulong phys, ExecMode mode, ulong csBase, ulong rip) =>
        _blocks.TryGetValue(new BlockKey(phys, mode, csBase, rip), out var b) && !b.Invalid ? b : null;

    /// <summary>Publishes a freshly decoded block; if another vCPU won the race, returns theirs.</summary>
    public Block Publish(Block b)
    {
        var key = BlockKey.Of(b);
        lock (_pagesLock)
        {
            if (_blocks.TryGetValue(key, out var existing) && !existing.Invalid) return existing;
            _blocks[key] = b;
            AddToPage(b.Page0, b);
            if (b.Page1 != ulong.MaxValue) AddToPage(b.Page1, b);
            Translations++;
        }
        return b;
    }

    void AddToPage(ulong page, Block b)
    {
        if (!_pages.TryGetValue(page, out var list)) _pages[page] = list = new List<Block>();
        list.Add(b);
        if (ram.MarkCodePage(page))
        {
            // Stores to this page must now take the slow path on every vCPU: each drops its write-TLB
            // entries at its next block boundary (the decoding vCPU flushes its own before running the block).
            foreach (var cpu in _cpus) cpu.RequestTlbFlush();
        }
    }

    /// <summary>Invalidates one block that no longer matches its guest (its second page was remapped), so that a fresh
    /// decode can take its key.</summary>
    public void Drop(Block b)
    {
        lock (_pagesLock) if (!b.Invalid) Invalidate(b);
    }

    void Invalidate(Block b)
    {
        b.Invalid = true;
        b.Compiled?.Unlink();
        _blocks.TryRemove(new KeyValuePair<BlockKey, Block>(BlockKey.Of(b), b));
        Invalidations++;
        // Regions that compiled this block's code inline are stale too (their heads may not overlap the write).
        if (b.InlinedInto != null)
            foreach (var head in b.InlinedInto) if (!head.Invalid) Invalidate(head);
    }

    /// <summary>Records that <paramref name="head"/>'s compiled region contains the code of <paramref name="members"/>.
    /// Returns false if a member was invalidated meanwhile (the region must not be published).</summary>
    internal bool RegisterRegion(Block head, Block[] members)
    {
        lock (_pagesLock)
        {
            foreach (var m in members) if (m.Invalid) return false;
            foreach (var m in members)
                if (m != head) (m.InlinedInto ??= new List<Block>()).Add(head);
            return true;
        }
    }

    /// <summary>Invalidates every block decoded from <paramref name="page"/> (used when a page changes wholesale).</summary>
    public void InvalidatePage(ulong page) => InvalidateRange(page << GuestRam.PageShift, (int)GuestRam.PageSize);

    /// <summary>Invalidates the blocks whose bytes overlap [phys, phys + size) (self- or cross-modifying code).
    /// Blocks elsewhere in the page stay: a page that mixes code and data (trampolines, boot code next to its
    /// variables) keeps its translations when only the data is written. Returns true if any block went.</summary>
    public bool InvalidateRange(ulong phys, int size)
    {
        ulong page = phys >> GuestRam.PageShift;
        ulong end = phys + (ulong)size;
        bool any = false;
        lock (_pagesLock)
        {
            if (!_pages.TryGetValue(page, out var list)) { ram.ClearCodePage(page); return false; }
            for (int k = list.Count - 1; k >= 0; k--)
            {
                var b = list[k];
                // The block's bytes on this page: all of them when it starts here, else the tail of an
                // instruction straddling in from its first page (which is physically elsewhere).
                ulong start, stop;
                if (b.Page0 == page) { start = b.Phys; stop = b.Phys + b.ByteLength; }
                else
                {
                    ulong firstPageBytes = ((b.Page0 + 1) << GuestRam.PageShift) - b.Phys;
                    start = page << GuestRam.PageShift;
                    stop = start + (b.ByteLength - firstPageBytes);
                }
                if (!b.Invalid && (stop <= phys || start >= end)) continue;
                if (!b.Invalid)
                {
                    Invalidate(b);
                    any = true;
                }
                list.RemoveAt(k);
            }
            if (list.Count == 0)
            {
                _pages.Remove(page);
                ram.ClearCodePage(page);
            }
        }
        return any;
    }
}

/// <summary>What identifies a decoded block: its physical address and the state its decoding depends on (mode, CS base,
/// RIP).</summary>
/// <remarks>PERF: a ValueTuple key hashed each of its four fields through the default comparers and combined them; the
/// lookup was a quarter of a freshly started AP's run (every block is a jump-cache miss there). One multiply-mix here;
/// RIP stays out of the hash (equality still compares it): the physical address already places the block.</remarks>
readonly struct BlockKey(ulong phys, ExecMode mode, ulong csBase, ulong rip) : IEquatable<BlockKey>
{
    readonly ulong _phys = phys, _csBase = csBase, _rip = rip;
    readonly ExecMode _mode = mode;

    public static BlockKey Of(Block b) => new(b.Phys, b.Mode, b.CsBase, b.Rip);

    public bool Equals(BlockKey o) => _phys == o._phys && _rip == o._rip && _csBase == o._csBase && _mode == o._mode;
    public override bool Equals(object? o) => o is BlockKey k && Equals(k);

    public override int GetHashCode()
    {
        ulong h = (_phys ^ _csBase * 0xC2B2AE3D27D4EB4FUL ^ (ulong)_mode << 48) * 0x9E3779B97F4A7C15UL;
        return (int)(h >> 32) ^ (int)h;
    }
}
