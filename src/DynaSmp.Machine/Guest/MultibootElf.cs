using System.Buffers.Binary;

namespace DynaSmp.Machine.Guests;

/// <summary>
/// Wraps loaded segments in a minimal ELF32 executable (EM_386, one PT_LOAD per segment, p_paddr = p_vaddr = load
/// address, no section headers) whose first segment starts with a multiboot v1 header. QEMU's multiboot loader
/// refuses ELF64, hence ELF32 even though most of the code inside is 64-bit.
/// </summary>
static class MultibootElf
{
    public const uint MultibootMagic = 0x1BAD_B002;
    public const uint MultibootAddressFieldsValid = 1u << 16;
    public const int ElfHeaderSize = 52, ProgramHeaderSize = 32;
    public const int FirstSegmentFileOffset = 0x1000; // the multiboot header must lie in the first 8 KiB of the file

    /// <summary>A segment loaded at <paramref name="Address"/>; segments must be contiguous and in address order.</summary>
    public readonly record struct Segment(uint Address, byte[] Bytes, bool Executable);

    /// <summary>
    /// Fills the 32-byte multiboot header at the start of <paramref name="first"/> (multiboot spec 3.1.1): magic, flags,
    /// checksum, then header_addr, load_addr, load_end_addr, bss_end_addr (0: no BSS), entry_addr.
    /// </summary>
    public static void WriteMultibootHeader(Span<byte> first, uint headerAddress, uint loadEnd, uint entry, bool addressFieldsValid)
    {
        uint flags = addressFieldsValid ? MultibootAddressFieldsValid : 0;
        BinaryPrimitives.WriteUInt32LittleEndian(first[0..], MultibootMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(first[4..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(first[8..], unchecked(0u - MultibootMagic - flags));
        BinaryPrimitives.WriteUInt32LittleEndian(first[12..], headerAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(first[16..], headerAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(first[20..], loadEnd);
        BinaryPrimitives.WriteUInt32LittleEndian(first[24..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(first[28..], entry);
    }

    public static byte[] Build(uint entry, IReadOnlyList<Segment> segments)
    {
        int fileSize = FirstSegmentFileOffset;
        for (int i = 0; i < segments.Count; i++)
        {
            if (i > 0 && segments[i].Address != segments[i - 1].Address + (uint)segments[i - 1].Bytes.Length)
                throw new InvalidOperationException($"segment {i} is not contiguous with the one before it");
            fileSize += segments[i].Bytes.Length;
        }
        if (ElfHeaderSize + segments.Count * ProgramHeaderSize > FirstSegmentFileOffset)
            throw new InvalidOperationException("too many program headers");

        var file = new byte[fileSize];
        var h = file.AsSpan();
        // ELF header (System V ABI, Intel386 supplement): ELFCLASS32, ELFDATA2LSB, EV_CURRENT, ET_EXEC, EM_386.
        h[0] = 0x7F; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = 1; h[5] = 1; h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2);               // e_type = ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], 3);               // e_machine = EM_386
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);               // e_version
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], entry);           // e_entry
        BinaryPrimitives.WriteUInt32LittleEndian(h[28..], ElfHeaderSize);   // e_phoff
        BinaryPrimitives.WriteUInt32LittleEndian(h[32..], 0);               // e_shoff
        BinaryPrimitives.WriteUInt32LittleEndian(h[36..], 0);               // e_flags
        BinaryPrimitives.WriteUInt16LittleEndian(h[40..], ElfHeaderSize);   // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[42..], ProgramHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[44..], (ushort)segments.Count);
        // e_shentsize, e_shnum, e_shstrndx stay 0: no section headers.

        int offset = FirstSegmentFileOffset;
        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            var p = h[(ElfHeaderSize + i * ProgramHeaderSize)..];
            BinaryPrimitives.WriteUInt32LittleEndian(p[0..], 1);                          // p_type = PT_LOAD
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)offset);               // p_offset
            BinaryPrimitives.WriteUInt32LittleEndian(p[8..], s.Address);                  // p_vaddr
            BinaryPrimitives.WriteUInt32LittleEndian(p[12..], s.Address);                 // p_paddr
            BinaryPrimitives.WriteUInt32LittleEndian(p[16..], (uint)s.Bytes.Length);      // p_filesz
            BinaryPrimitives.WriteUInt32LittleEndian(p[20..], (uint)s.Bytes.Length);      // p_memsz (no BSS)
            BinaryPrimitives.WriteUInt32LittleEndian(p[24..], s.Executable ? 5u : 6u);    // PF_R|PF_X or PF_R|PF_W
            BinaryPrimitives.WriteUInt32LittleEndian(p[28..], 0x1000);                    // p_align: offset == vaddr mod 4 KiB
            s.Bytes.CopyTo(h[offset..]);
            offset += s.Bytes.Length;
        }
        return file;
    }
}
