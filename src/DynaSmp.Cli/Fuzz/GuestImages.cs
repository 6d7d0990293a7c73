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

    /// <summary>32-bit code, placed at <paramref name="at"/>, that enters 64-bit mode and falls through to what follows it:
    /// its own GDT (64-bit code at 0x08, data at 0x10), 4-level paging identity-mapping 4 GiB with 2 MiB pages (tables at
    /// 0x1000-0x6FFF, the APIC page included), CR4.PAE, EFER.LME, CR0.PG, then a far jump. RSP = 0x7FF0.</summary>
    public static byte[] EnterLongMode(uint at)
    {
        const uint Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000, Gdt = 0x7F00;
        byte[] Build(uint target)
        {
            var a = new Assembler(32);
            var fill = a.CreateLabel();
            a.cli();
            a.mov(__dword_ptr[Gdt + 8], 0x0000_FFFF); a.mov(__dword_ptr[Gdt + 12], 0x00AF_9A00);   // 64-bit code
            a.mov(__dword_ptr[Gdt + 16], 0x0000_FFFF); a.mov(__dword_ptr[Gdt + 20], 0x00CF_9200);  // flat data
            a.mov(__dword_ptr[Gdt], 0); a.mov(__dword_ptr[Gdt + 4], 0);
            a.mov(__word_ptr[Gdt + 0x20], 23); a.mov(__dword_ptr[Gdt + 0x22], Gdt);
            a.lgdt(__fword_ptr[Gdt + 0x20]);
            a.mov(__dword_ptr[Pml4], Pdpt | 3); a.mov(__dword_ptr[Pml4 + 4], 0);
            for (uint i = 0; i < 4; i++) { a.mov(__dword_ptr[Pdpt + 8 * i], (Pd + 0x1000 * i) | 3); a.mov(__dword_ptr[Pdpt + 8 * i + 4], 0); }
            a.xor(ecx, ecx);                                           // 2,048 PDEs: ecx * 2 MiB | P RW PS
            a.Label(ref fill);
            a.mov(eax, ecx); a.shl(eax, 21); a.or(eax, 0x83);
            a.mov(__dword_ptr[ecx * 8 + (int)Pd], eax); a.mov(__dword_ptr[ecx * 8 + (int)(Pd + 4)], 0);
            a.inc(ecx); a.cmp(ecx, 2048); a.jb(fill);
            a.mov(eax, Pml4); a.mov(cr3, eax);
            a.mov(eax, cr4); a.or(eax, 0x20); a.mov(cr4, eax);       // PAE
            a.mov(ecx, 0xC000_0080); a.rdmsr(); a.or(eax, 0x100); a.wrmsr(); // EFER.LME
            a.mov(eax, cr0); a.or(eax, unchecked((int)0x8000_0001)); a.mov(cr0, eax);
            a.jmp(0x08, target);
            var bytes = CodeBytes.Assemble(a, at).ToList();
            // 64-bit: data segments and a stack.
            bytes.AddRange([0x66, 0xB8, 0x10, 0x00, 0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0]); // mov ax, 0x10; mov ds/es/ss, ax
            bytes.AddRange([0xBC, 0xF0, 0x7F, 0x00, 0x00]);                               // mov esp, 0x7FF0
            return bytes.ToArray();
        }
        int farJumpEnd = Build(0).Length - 15;                   // the far jump's length does not depend on its target
        return Build(at + (uint)farJumpEnd);
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
