using System.Buffers.Binary;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// An x86-64 vmlinux ELF as a bzImage's payload holds it: the segments at their physical load addresses and the
/// physical address of startup_64, the kernel proper's 64-bit entry. Loading it where it was linked is what the
/// kernel's decompressor does without KASLR (parse_elf), so no relocation is applied.
/// </summary>
public sealed class Vmlinux
{
    const ulong StartKernelMap = 0xFFFF_FFFF_8000_0000; // __START_KERNEL_map: a virtual e_entry is this plus physical

    // Segments are sorted and do not overlap (Parse), so the last one ends the image.
    Vmlinux(IReadOnlyList<LoadSegment> segments, ulong entry) { Segments = segments; Entry = entry; }

    public IReadOnlyList<LoadSegment> Segments { get; }
    /// <summary>Physical address of startup_64.</summary>
    public ulong Entry { get; }
    public ulong Start => Segments[0].PhysicalAddress;
    public ulong End => Segments[^1].End;

    /// <summary>Parses <paramref name="elf"/>; throws <see cref="LinuxImageException"/> naming what is wrong.</summary>
    public static Vmlinux Parse(ReadOnlyMemory<byte> elf)
    {
        var b = elf.Span;
        if (b.Length < 64 || b[0] != 0x7F || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new LinuxImageException("the decompressed payload is not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new LinuxImageException("the decompressed payload is not a little-endian 64-bit ELF");
        if (U16(b, 0x12) != 62) throw new LinuxImageException($"the decompressed payload is an ELF for machine {U16(b, 0x12)}, not x86-64");
        ulong entry = U64(b, 0x18), phoff = U64(b, 0x20);
        int phentsize = U16(b, 0x36), phnum = U16(b, 0x38);
        if (phentsize < 56 || phnum == 0 || phoff > (ulong)b.Length || (ulong)phentsize * (ulong)phnum > (ulong)b.Length - phoff)
            throw new LinuxImageException("the vmlinux ELF's program headers lie outside the file");
        var segments = new List<LoadSegment>();
        for (int k = 0; k < phnum; k++)
        {
            var ph = b.Slice((int)phoff + k * phentsize, 56);
            if (U32(ph, 0) != 1) continue; // PT_LOAD only
            ulong offset = U64(ph, 0x08), paddr = U64(ph, 0x18), filesz = U64(ph, 0x20), memsz = U64(ph, 0x28);
            if (offset > (ulong)b.Length || filesz > (ulong)b.Length - offset || filesz > memsz || memsz > 1UL << 32 || paddr > 1UL << 40)
                throw new LinuxImageException($"vmlinux segment {k} (offset 0x{offset:x}, {filesz} bytes in file, {memsz} in memory) is malformed");
            segments.Add(new LoadSegment(paddr, elf.Slice((int)offset, (int)filesz), memsz));
        }
        if (segments.Count == 0) throw new LinuxImageException("the vmlinux ELF has no loadable segment");
        segments.Sort((x, y) => x.PhysicalAddress.CompareTo(y.PhysicalAddress));
        for (int k = 1; k < segments.Count; k++)
            if (segments[k].PhysicalAddress < segments[k - 1].End)
                throw new LinuxImageException($"vmlinux segments at 0x{segments[k - 1].PhysicalAddress:x} and 0x{segments[k].PhysicalAddress:x} overlap");
        if (entry >= StartKernelMap) entry -= StartKernelMap;
        bool inside = false;
        foreach (var s in segments) inside |= entry >= s.PhysicalAddress && entry < s.End;
        if (!inside) throw new LinuxImageException($"the vmlinux entry point 0x{entry:x} is in no loadable segment");
        return new Vmlinux(segments, entry);
    }

    static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);
}
