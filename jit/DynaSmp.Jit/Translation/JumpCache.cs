using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// A vCPU's direct-mapped map from RIP to the block last run there (QEMU's tb_jmp_cache): the first probe of both the
/// dispatcher (<see cref="CpuCore.Lookup"/>) and compiled indirect branches (<see cref="JitHelpers.IndirectTarget"/>),
/// before the VM's <see cref="BlockCache"/>. Owner thread only.
/// </summary>
/// <remarks>It starts at <see cref="InitialEntries"/> and grows to <see cref="MaxEntries"/> once the vCPU has filled
/// it twice over: an AP of the built-in guest runs about 40 blocks, and 1,024 vCPUs of 4,096 entries each zeroed
/// 32 MiB at set-up, a page fault per 4 KiB, most of a fleet's set-up time on a Firecracker host.</remarks>
public sealed class JumpCache
{
    public const int InitialEntries = 256, MaxEntries = 4096;

    Block?[] _slots = new Block?[InitialEntries];
    int _fills;

    // Slots filled since the cache was last empty, so that a flush clears only those (every paging change flushes: a
    // kernel's CR3 load cleared 4,096 slots, 32 KiB, and an AP's bring-up flushes seven times between a few blocks). Past
    // FillLogSize the log is given up and a flush clears the whole array.
    const int FillLogSize = 48, FillLogOverflow = FillLogSize + 1;
    readonly short[] _fillLog = new short[FillLogSize];
    int _fillCount;

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

    /// <summary>Caches <paramref name="b"/> (found at <paramref name="rip"/> after a miss).</summary>
    public void Fill(ulong rip, Block b)
    {
        if (++_fills > 2 * InitialEntries && _slots.Length < MaxEntries) { _slots = new Block?[MaxEntries]; _fillCount = 0; }
        int index = Index(rip, _slots.Length);
        if (_slots[index] == null)
        {
            if (_fillCount < FillLogSize) _fillLog[_fillCount++] = (short)index;
            else _fillCount = FillLogOverflow;
        }
        _slots[index] = b;
    }

    /// <summary>Drops every entry: a mapping change means RIP must be translated again.</summary>
    public void Flush()
    {
        if (_fillCount <= FillLogSize)
            for (int k = 0; k < _fillCount; k++) _slots[_fillLog[k]] = null;
        else Array.Clear(_slots);
        _fillCount = 0;
    }
}
