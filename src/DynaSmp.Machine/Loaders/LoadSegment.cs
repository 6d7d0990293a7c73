namespace DynaSmp.Machine.Loaders;

/// <summary>
/// Copy <see cref="Data"/> to guest-physical <see cref="PhysicalAddress"/> and zero the rest of
/// <see cref="MemorySize"/> bytes (an ELF segment's BSS, or the a.out kludge's bss_end_addr).
/// </summary>
public sealed record LoadSegment(ulong PhysicalAddress, ReadOnlyMemory<byte> Data, ulong MemorySize)
{
    public ulong End => PhysicalAddress + MemorySize;
}
