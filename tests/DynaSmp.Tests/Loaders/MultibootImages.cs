using System.Buffers.Binary;

namespace DynaSmp.Tests.Loaders;

/// <summary>Hand-built Multiboot kernels: an ELF32 with text + data/bss, and a flat a.out-kludge image.</summary>
sealed class MultibootElf
{
    public byte Class = 1, DataEncoding = 1;
    public ushort Machine = 3;
    public uint Entry = 0x10000C;
    public uint MbFlags = 0x00000003; // page-align modules, memory info
    public int ChecksumDelta;
    public int HeaderFileOffset = 0x100;
    public uint TextPaddr = 0x100000, TextVaddr = 0x100000, TextFlags = 5; // R | X
    public uint DataPaddr = 0x101000, DataVaddr = 0x101000, DataMemsz = 0x1000;
    public uint TextType = 1, DataType = 1;
    public ushort Phnum = 2, Phentsize = 32;

    public static readonly byte[] Code = { 0xFA, 0xF4, 0xEB, 0xFD }; // cli; hlt; jmp $-1
    /// <summary>Placed right after the 12-byte Multiboot header (at 0x10000C); at most TextSize - 12 bytes.</summary>
    public byte[] TextCode = Code;
    public static readonly byte[] DataBytes = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    public const int TextFileOffset = 0x100, TextSize = 0x60, DataFileOffset = 0x160, FileSize = 0x170;

    public byte[] Build()
    {
        var f = new byte[FileSize];
        f[0] = 0x7F; f[1] = (byte)'E'; f[2] = (byte)'L'; f[3] = (byte)'F';
        f[4] = Class; f[5] = DataEncoding; f[6] = 1;
        W16(f, 16, 2);            // ET_EXEC
        W16(f, 18, Machine);
        W32(f, 20, 1);
        W32(f, 24, Entry);
        W32(f, 28, 52);           // e_phoff
        W16(f, 40, 52);
        W16(f, 42, Phentsize);
        W16(f, 44, Phnum);
        Phdr(f, 52, TextType, TextFileOffset, TextVaddr, TextPaddr, TextSize, TextSize, TextFlags);
        Phdr(f, 84, DataType, DataFileOffset, DataVaddr, DataPaddr, (uint)DataBytes.Length, DataMemsz, 6);
        // The text segment starts with the Multiboot header, then the code.
        W32(f, HeaderFileOffset, 0x1BADB002);
        W32(f, HeaderFileOffset + 4, MbFlags);
        W32(f, HeaderFileOffset + 8, unchecked(0u - 0x1BADB002u - MbFlags + (uint)ChecksumDelta));
        TextCode.CopyTo(f, TextFileOffset + 12);
        DataBytes.CopyTo(f, DataFileOffset);
        return f;
    }

    static void Phdr(byte[] f, int at, uint type, uint offset, uint vaddr, uint paddr, uint filesz, uint memsz, uint flags)
    {
        W32(f, at, type); W32(f, at + 4, offset); W32(f, at + 8, vaddr); W32(f, at + 12, paddr);
        W32(f, at + 16, filesz); W32(f, at + 20, memsz); W32(f, at + 24, flags); W32(f, at + 28, 0x1000);
    }

    public static void W32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
    public static void W16(byte[] b, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), v);
}

/// <summary>A flat kernel loaded by the header's address fields (flags bit 16): the header is at file offset 0x10.</summary>
sealed class MultibootAout
{
    public uint MbFlags = 0x00010002;
    public uint HeaderAddr = 0x200010, LoadAddr = 0x200000, LoadEndAddr = 0x200040, BssEndAddr = 0x203000, EntryAddr = 0x200030;
    public const int HeaderOffset = 0x10, FileSize = 0x60;

    public byte[] Build()
    {
        var f = new byte[FileSize];
        for (int i = 0; i < f.Length; i++) f[i] = (byte)(0x80 + i);
        MultibootElf.W32(f, HeaderOffset, 0x1BADB002);
        MultibootElf.W32(f, HeaderOffset + 4, MbFlags);
        MultibootElf.W32(f, HeaderOffset + 8, unchecked(0u - 0x1BADB002u - MbFlags));
        MultibootElf.W32(f, HeaderOffset + 12, HeaderAddr);
        MultibootElf.W32(f, HeaderOffset + 16, LoadAddr);
        MultibootElf.W32(f, HeaderOffset + 20, LoadEndAddr);
        MultibootElf.W32(f, HeaderOffset + 24, BssEndAddr);
        MultibootElf.W32(f, HeaderOffset + 28, EntryAddr);
        return f;
    }
}
