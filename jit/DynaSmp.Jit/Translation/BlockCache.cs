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
    readonly ConcurrentDictionary<(ulong Phys, ExecMode Mode, ulong CsBase, ulong Rip), Block> _blocks = new();
    // Blocks per physical page, for invalidation. Guarded by _pagesLock: touched only on translate/invalidate.
    readonly Dictionary<ulong, List<Block>> _pages = new();
    readonly Lock _pagesLock = new();
    readonly List<CpuCore> _cpus = new();

    public GuestRam Ram => ram;
    /// <summary>Compile hot blocks together with the blocks they branch to in the same page (regions).</summary>
    public bool Regions { get; set; } = true;
    public long Invalidations;
    public long Translations;

    internal void Register(CpuCore cpu)
    {
        lock (_pagesLock) _cpus.Add(cpu);
    }

    public Block? Find(ulong phys, ExecMode mode, ulong csBase, ulong rip) =>
        _blocks.TryGetValue((phys, mode, csBase, rip), out var b) && !b.Invalid ? b : null;

    /// <summary>Publishes a freshly decoded block; if another vCPU won the race, returns theirs.</summary>
    public Block Publish(Block b)
    {
        var key = (b.Phys, b.Mode, b.CsBase, b.Rip);
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

    /// <summary>Invalidates every block decoded from <paramref name="page"/> (self- or cross-modifying code).</summary>
    public void InvalidatePage(ulong page)
    {
        lock (_pagesLock)
        {
            if (!_pages.Remove(page, out var list)) { ram.ClearCodePage(page); return; }
            foreach (var b in list)
            {
                if (b.Invalid) continue;
                b.Invalid = true;
                b.Compiled?.Unlink();
                _blocks.TryRemove(new KeyValuePair<(ulong, ExecMode, ulong, ulong), Block>((b.Phys, b.Mode, b.CsBase, b.Rip), b));
                Invalidations++;
            }
            ram.ClearCodePage(page);
        }
    }
}
