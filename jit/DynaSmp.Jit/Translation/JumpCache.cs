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
        if (++_fills > 2 * InitialEntries && _slots.Length < MaxEntries) _slots = new Block?[MaxEntries];
        _slots[Index(rip, _slots.Length)] = b;
    }

    /// <summary>Drops every entry: a mapping change means RIP must be translated again.</summary>
    public void Flush() => Array.Clear(_slots);
}
