using System.Buffers.Binary;
using System.Text;
using DynaSmp.Jit;
using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

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

/// <summary>
/// A flat a.out-kludge kernel linked at 0x8000, below the old fixed info page at 0x9000 and reaching past it with its
/// BSS (the stack). It prints over COM1 what the loader handed it and exits through isa-debug-exit:
/// <code>
/// magic ok
/// mbi XXXXXXXX
/// cmdline [...]
/// mmap BASE(16 hex) LENGTH(16 hex) TYPE(8 hex)    (one line per memory map entry)
/// done
/// </code>
/// isa-debug-exit value 0 on success; 1 for a bad EAX magic; 2 when the cmdline or mmap flag is missing.
/// </summary>
static class MultibootInfoDumper
{
    public const uint LoadAddr = 0x8000, BssEnd = 0xA800, StackTop = BssEnd;
    const uint Flags = 0x00010002; // memory info, address fields

    public static byte[] Build()
    {
        var a = new Assembler(32);
        Label badMagic = a.CreateLabel(), missingFlag = a.CreateLabel(), exit = a.CreateLabel();
        Label next = a.CreateLabel(), mmapDone = a.CreateLabel(), halt = a.CreateLabel();
        Label puts = a.CreateLabel(), hex32 = a.CreateLabel(), space = a.CreateLabel(), newline = a.CreateLabel();

        // The strings follow the 32-byte header at addresses known before assembly: Iced's label operands are
        // RIP-relative, which 32-bit code cannot encode.
        var strings = new MemoryStream();
        uint Str(string text)
        {
            uint at = LoadAddr + 32 + (uint)strings.Length;
            strings.Write(Encoding.ASCII.GetBytes(text + "\0"));
            return at;
        }
        uint sMagic = Str("magic ok\n"), sBadMagic = Str("bad magic "), sMbi = Str("mbi "), sCmdline = Str("cmdline [");
        uint sClose = Str("]\n"), sMmap = Str("mmap "), sDone = Str("done\n"), sFlags = Str("missing info flag, flags ");
        uint entry = LoadAddr + 32 + (uint)strings.Length;

        // Header (section 3.1); load_end_addr is patched once the size is known.
        a.dd(0x1BADB002); a.dd(Flags); a.dd(unchecked(0u - 0x1BADB002u - Flags));
        a.dd(LoadAddr); a.dd(LoadAddr); a.dd(0); a.dd(BssEnd); a.dd(entry);
        a.db(strings.ToArray());

        a.mov(esp, StackTop);
        a.mov(dx, MachineInfo.SerialPort); // dx stays COM1 until the exit
        a.cmp(eax, unchecked((int)0x2BADB002));
        a.jne(badMagic);
        a.mov(esi, ebx);
        a.mov(ecx, sMagic); a.call(puts);
        a.mov(ecx, sMbi); a.call(puts); a.mov(eax, esi); a.call(hex32); a.call(newline);
        a.test(__dword_ptr[esi], 1 << 2); // cmdline valid
        a.jz(missingFlag);
        a.test(__dword_ptr[esi], 1 << 6); // mmap valid
        a.jz(missingFlag);
        a.mov(ecx, sCmdline); a.call(puts); a.mov(ecx, __dword_ptr[esi + 16]); a.call(puts); a.mov(ecx, sClose); a.call(puts);

        // Entries are 'size' bytes long, not counting the size field itself (section 3.3).
        a.mov(ebp, __dword_ptr[esi + 48]);
        a.mov(edi, __dword_ptr[esi + 44]);
        a.add(edi, ebp);
        a.Label(ref next);
        a.cmp(ebp, edi);
        a.jae(mmapDone);
        a.mov(ecx, sMmap); a.call(puts);
        a.mov(eax, __dword_ptr[ebp + 8]); a.call(hex32); a.mov(eax, __dword_ptr[ebp + 4]); a.call(hex32); a.call(space);
        a.mov(eax, __dword_ptr[ebp + 16]); a.call(hex32); a.mov(eax, __dword_ptr[ebp + 12]); a.call(hex32); a.call(space);
        a.mov(eax, __dword_ptr[ebp + 20]); a.call(hex32); a.call(newline);
        a.mov(eax, __dword_ptr[ebp]);
        a.lea(ebp, __[ebp + eax + 4]);
        a.jmp(next);
        a.Label(ref mmapDone);
        a.mov(ecx, sDone); a.call(puts);
        a.mov(al, 0);
        a.jmp(exit);

        a.Label(ref badMagic);
        a.mov(esi, eax);
        a.mov(dx, MachineInfo.SerialPort);
        a.mov(ecx, sBadMagic); a.call(puts); a.mov(eax, esi); a.call(hex32); a.call(newline);
        a.mov(al, 1);
        a.jmp(exit);

        a.Label(ref missingFlag);
        a.mov(ecx, sFlags); a.call(puts); a.mov(eax, __dword_ptr[esi]); a.call(hex32); a.call(newline);
        a.mov(al, 2);

        a.Label(ref exit);
        a.mov(dx, MachineInfo.DebugExitPort);
        a.@out(dx, al);
        a.Label(ref halt);
        a.cli();
        a.hlt();
        a.jmp(halt);

        // puts: the NUL-terminated string at ecx.
        Label putsEnd = a.CreateLabel();
        a.Label(ref puts);
        a.mov(al, __byte_ptr[ecx]);
        a.test(al, al);
        a.jz(putsEnd);
        a.@out(dx, al);
        a.inc(ecx);
        a.jmp(puts);
        a.Label(ref putsEnd);
        a.ret();

        // hex32: eax as 8 lower-case hex digits; eax survives (eight 4-bit rotations).
        Label hexLoop = a.CreateLabel(), digit = a.CreateLabel();
        a.Label(ref hex32);
        a.push(ebx);
        a.push(ecx);
        a.mov(ecx, 8);
        a.Label(ref hexLoop);
        a.rol(eax, 4);
        a.mov(ebx, eax);
        a.and(ebx, 0xF);
        a.cmp(bl, 10);
        a.jb(digit);
        a.add(bl, (byte)('a' - 10 - '0'));
        a.Label(ref digit);
        a.add(bl, (byte)'0');
        a.push(eax);
        a.mov(al, bl);
        a.@out(dx, al);
        a.pop(eax);
        a.dec(ecx);
        a.jnz(hexLoop);
        a.pop(ecx);
        a.pop(ebx);
        a.ret();

        a.Label(ref space);
        a.mov(al, (byte)' ');
        a.@out(dx, al);
        a.ret();
        a.Label(ref newline);
        a.mov(al, (byte)'\n');
        a.@out(dx, al);
        a.ret();

        byte[] image = CodeBytes.Assemble(a, LoadAddr);
        MultibootElf.W32(image, 20, LoadAddr + (uint)image.Length); // load_end_addr: the whole file; BSS follows
        return image;
    }
}
