using System.Runtime.InteropServices;

namespace DynaSmp.Jit.Cpu;

/// <summary>A segment register with its hidden descriptor cache (Intel SDM 3.4.3): the CPU uses the
/// cached base, limit and attributes, never the descriptor table, until the selector is reloaded.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct SegmentCache
{
    public ulong Base;
    public uint Limit;
    /// <summary>Descriptor attribute bits 8-15 and 20-23 of the high dword, packed as in VMX's access-rights format.</summary>
    public uint Attributes;
    public ushort Selector;
    ushort _pad0;
    uint _pad1;

    public const uint Present = 1 << 7, DefaultBig = 1 << 14, Long = 1 << 13, Granularity = 1 << 15;

    public readonly int Dpl => (int)((Attributes >> 5) & 3);

    public void LoadRealMode(ushort selector)
    {
        Selector = selector;
        Base = (ulong)selector << 4;
    }

    public static SegmentCache Flat(ushort selector, uint attributes) =>
        new() { Selector = selector, Base = 0, Limit = 0xFFFF_FFFF, Attributes = attributes };
}
