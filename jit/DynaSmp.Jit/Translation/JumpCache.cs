using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// A vCPU's direct-mapped map from RIP to the block last run there (QEMU's tb_jmp_cache): the first probe of both the
/// dispatcher (<see cref="CpuCore.Lookup"/>) and compiled indirect branches (<see cref="JitHelpers.IndirectTarget"/>),
/// before the VM's <see cref="BlockCache"/>. Owner thread only.
/// </summary>
/// <remarks>It starts at <see cref="InitialEntries"/> and grows eightfold, up to <see cref="MaxEntries"/>, each time
/// the vCPU has evicted more entries than it has slots: an AP of the built-in guest runs about 40 blocks, and 1,024
/// vCPUs of 4,096 entries each zeroed 32 MiB at set-up, a page fault per 4 KiB, most of a fleet's set-up time on a
/// Firecracker host; a booting Linux kernel runs tens of thousands of blocks, and at 4,096 entries it missed 6% of
/// 21M lookups, each a page walk and a block-cache probe (1.28M misses; 0.40M at 32,768).</remarks>
public sealed class JumpCache
{
    public const int InitialEntries = 256, MaxEntries = 32768;

    Block?[] _slots = new Block?[InitialEntries];
    // Per slot: how the linear address of the block's RIP was translated when the slot was filled, so that a guest TLB
    // flush drops only what it invalidates (SDM 4.10.4.1): the page-offset mask of the page it lies in (4 KiB, 2 MiB,
    // 1 GiB; all ones for a block that crosses into a second page, which any INVLPG drops) and whether the mapping was
    // global (a CR3 load keeps it).
    ulong[] _spans = new ulong[InitialEntries];
    ulong[] _linear = new ulong[InitialEntries];
    int _evictions;

    // Slots filled since the cache was last empty, so that a flush clears only those (every paging change flushes: a
    // kernel's CR3 load cleared 4,096 slots, 32 KiB, and an AP's bring-up flushes seven times between a few blocks). Past
    // FillLogSize the log is given up and a flush visits the whole array.
    const int FillLogSize = 48, FillLogOverflow = FillLogSize + 1;
    const ulong GlobalBit = 1UL << 63;
    readonly short[] _fillLog = new short[FillLogSize];
    int _fillCount;

    /// <summary>Lookups that missed (the dispatcher then goes to the VM's block cache), and flushes by kind.</summary>
    public long Misses, FullFlushes, NonGlobalFlushes, PageFlushes;

    /// <summary>Entries now (grows once).</summary>
    public int Capacity => _slots.Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Index(ulong rip, int length) => (int)(rip ^ (rip >> 12)) & (length - 1);

    /// <summary>The block for <paramref name="rip"/> in this mode and code segment, if it is cached and still valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Block? Probe(ulong rip, ExecMode mode, ulong csBase)
    {
        var slots = _slots;
        Block? b = slots[Index(rip, slots.Length)];
        return b != null && b.Rip == rip && b.Mode == mode && b.CsBase == csBase && !b.Invalid ? b : null;
    }

    /// <summary>Caches <paramref name="b"/> (found at <paramref name="rip"/>, linear address <paramref name="linear"/>,
    /// after a miss). <paramref name="span"/> and <paramref name="global"/> describe the translation of that address.</summary>
    public void Fill(ulong rip, Block b, ulong linear, ulong span, bool global)
    {
        int index = Index(rip, _slots.Length);
        if (_slots[index] != null && ++_evictions > _slots.Length && _slots.Length < MaxEntries)
        {
            // More evictions than slots since the last full flush: the vCPU's working set is bigger than the table.
            // Refills after flushes, which an AP in an INIT/SIPI storm does all day, land mostly in empty slots and
            // never grow it (the run loop allocates nothing in steady state).
            int n = Math.Min(_slots.Length * 8, MaxEntries);
            _slots = new Block?[n]; _spans = new ulong[n]; _linear = new ulong[n];
            _fillCount = 0; _evictions = 0;
            index = Index(rip, n);
        }
        if (_slots[index] == null)
        {
            if (_fillCount < FillLogSize) _fillLog[_fillCount++] = (short)index;
            else _fillCount = FillLogOverflow;
        }
        _slots[index] = b;
        _linear[index] = linear;
        // A block whose bytes run into a second page depends on that page's mapping too.
        _spans[index] = b.Page1 != ulong.MaxValue ? ~GlobalBit : span | (global ? GlobalBit : 0);
    }

    /// <summary>Drops every entry: a mapping change means RIP must be translated again.</summary>
    public void Flush()
    {
        FullFlushes++;
        _evictions = 0; // counted between full flushes: a storm's few conflicts per INIT never add up to a growth
        if (_fillCount <= FillLogSize)
            for (int k = 0; k < _fillCount; k++) _slots[_fillLog[k]] = null;
        else Array.Clear(_slots);
        _fillCount = 0;
    }

    /// <summary>MOV to CR3: drops the entries found through non-global translations; the global ones stay, as their
    /// TLB entries do. A kernel's own code is mapped global, so its hot blocks survive every context switch.</summary>
    public void FlushNonGlobal()
    {
        NonGlobalFlushes++;
        DropWhere(nonGlobal: true, 0);
    }

    /// <summary>INVLPG of <paramref name="linear"/>: drops the entries whose translation covers that address (the whole
    /// large page, if the entry was found through one), global or not.</summary>
    public void FlushPage(ulong linear)
    {
        PageFlushes++;
        DropWhere(nonGlobal: false, linear);
    }

    // Drops the entries found through a non-global mapping, or else those whose page holds linear; the survivors stay
    // logged (the log is rebuilt from them when it had overflowed).
    void DropWhere(bool nonGlobal, ulong linear)
    {
        var slots = _slots;
        if (_fillCount <= FillLogSize)
        {
            int kept = 0;
            for (int k = 0; k < _fillCount; k++)
            {
                int i = _fillLog[k];
                if (slots[i] == null) continue;
                if (Drops(i, nonGlobal, linear)) slots[i] = null;
                else _fillLog[kept++] = (short)i;
            }
            _fillCount = kept;
            return;
        }
        int left = 0;
        for (int i = 0; i < slots.Length; i++)
        {
            if (slots[i] == null) continue;
            if (Drops(i, nonGlobal, linear)) slots[i] = null;
            else if (left < FillLogSize) _fillLog[left++] = (short)i;
            else left = FillLogOverflow;
        }
        _fillCount = left;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    bool Drops(int i, bool nonGlobal, ulong linear)
    {
        ulong span = _spans[i];
        return nonGlobal ? (span & GlobalBit) == 0 : ((_linear[i] ^ linear) & ~(span | GlobalBit)) == 0;
    }
}
