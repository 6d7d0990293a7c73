using System.Buffers.Binary;
using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Cli.Fuzz;

/// <summary>Small multiboot images for hostile-input tests and the fuzzer: a flat image loaded by the multiboot
/// header's address fields (no ELF), entered in 32-bit flat protected mode right after the 32-byte header.</summary>
public static class GuestImages
{
    public const uint LoadAddress = 0x10_0000, Entry = LoadAddress + HeaderSize;
    public const int HeaderSize = 32;
    public const uint ApicBase = 0xFEE0_0000, Trampoline = 0x8000;

    /// <summary>A multiboot v1 image whose 32-bit code (assembled for <see cref="Entry"/>) follows the header.</summary>
    public static byte[] Flat(ReadOnlySpan<byte> code, int bssBytes = 0)
    {
        var f = new byte[HeaderSize + code.Length];
        const uint Magic = 0x1BAD_B002, Flags = 1u << 16; // address fields valid
        var h = f.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(h[0..], Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], unchecked(0u - Magic - Flags));
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], LoadAddress);                          // header_addr
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], LoadAddress);                          // load_addr
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 0);                                    // load_end_addr: whole file
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], bssBytes == 0 ? 0 : LoadAddress + (uint)f.Length + (uint)bssBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(h[28..], Entry);
        code.CopyTo(f.AsSpan(HeaderSize));
        return f;
    }

    public static byte[] Assemble(Assembler a) => CodeBytes.Assemble(a, Entry);

    /// <summary>Every vCPU spins with interrupts off: the BSP starts all APs (INIT + SIPI to all-excluding-self) at a
    /// real-mode `cli; jmp $`, then runs `cli; jmp $` itself. The worst case for --timeout.</summary>
    public static byte[] SpinAll()
    {
        var a = new Assembler(32);
        var self = a.CreateLabel();
        a.cli();
        a.mov(__dword_ptr[Trampoline], 0x00FE_EBFA);          // cli; jmp $ (real mode)
        a.mov(__dword_ptr[ApicBase + 0x300], 0x000C_4500);    // INIT, level assert, all excluding self
        a.mov(__dword_ptr[ApicBase + 0x300], 0x000C_4600 | (Trampoline >> 12)); // STARTUP
        a.mov(__dword_ptr[ApicBase + 0x300], 0x000C_4600 | (Trampoline >> 12));
        a.Label(ref self);
        a.jmp(self);
        return Flat(Assemble(a));
    }

    /// <summary>Writes <paramref name="value"/> to isa-debug-exit (status (value &lt;&lt; 1) | 1).</summary>
    public static byte[] DebugExit(byte value)
    {
        var a = new Assembler(32);
        a.mov(al, value);
        a.@out(0xF4, al);
        var self = a.CreateLabel();
        a.Label(ref self);
        a.hlt();
        a.jmp(self);
        return Flat(Assemble(a));
    }

    /// <summary>#UD with an IDT of limit 0: #UD cannot be delivered (#GP), nor #GP (#DF), nor #DF: a triple fault.</summary>
    public static byte[] TripleFault()
    {
        var a = new Assembler(32);
        a.mov(__dword_ptr[0x7000], 0);
        a.mov(__word_ptr[0x7004], 0);
        a.lidt(__fword_ptr[0x7000]); // limit 0, base 0
        a.ud2();
        return Flat(Assemble(a));
    }

    /// <summary>IRET to EFLAGS.VM = 1: virtual-8086 mode, which DynaSmp deliberately does not emulate.</summary>
    public static byte[] Virtual8086()
    {
        var a = new Assembler(32);
        foreach (uint v in new uint[] { 0, 0, 0, 0, 0x9000, 0x7000, 0x0002_0002, 0x0800, 0 }) a.push(v); // GS FS DS ES SS ESP EFLAGS CS EIP
        a.iretd();
        return Flat(Assemble(a));
    }
}
