namespace DynaSmp.Jit.Cpu;

/// <summary>A raw 8-byte segment or gate descriptor (Intel SDM Vol. 3A 3.4.5, 6.11).</summary>
public readonly struct Descriptor(ulong raw)
{
    public ulong Raw { get; } = raw;
    public ulong Base => ((Raw >> 16) & 0xFF_FFFF) | (((Raw >> 56) & 0xFF) << 24);
    public uint RawLimit => (uint)((Raw & 0xFFFF) | ((Raw >> 32) & 0xF_0000));
    public uint Limit => Granularity ? (RawLimit << 12) | 0xFFF : RawLimit;
    /// <summary>Type field (bits 40-43).</summary>
    public int Type => (int)((Raw >> 40) & 0xF);
    /// <summary>S flag: 1 for code/data, 0 for system descriptors and gates.</summary>
    public bool IsCodeOrData => (Raw & (1UL << 44)) != 0;
    public int Dpl => (int)((Raw >> 45) & 3);
    public bool Present => (Raw & (1UL << 47)) != 0;
    public bool Long => (Raw & (1UL << 53)) != 0;
    public bool DefaultBig => (Raw & (1UL << 54)) != 0;
    public bool Granularity => (Raw & (1UL << 55)) != 0;
    public bool IsCode => IsCodeOrData && (Type & 8) != 0;
    public bool IsConforming => IsCode && (Type & 4) != 0;
    public bool IsReadable => !IsCode || (Type & 2) != 0;
    public bool IsWritableData => IsCodeOrData && (Type & 8) == 0 && (Type & 2) != 0;
    /// <summary>Attributes in the packed form SegmentCache keeps (descriptor bits 40-47 and 52-55).</summary>
    public uint Attributes => (uint)((Raw >> 40) & 0xF0FF);

    // Gate fields (SDM 6.11, 6.14.1).
    public ushort GateSelector => (ushort)(Raw >> 16);
    public ulong GateOffset32 => (Raw & 0xFFFF) | ((Raw >> 32) & 0xFFFF_0000);
    public int GateIst => (int)((Raw >> 32) & 7);

    public SegmentCache ToCache(ushort selector) =>
        new() { Selector = selector, Base = Base, Limit = Limit, Attributes = Attributes };
}
