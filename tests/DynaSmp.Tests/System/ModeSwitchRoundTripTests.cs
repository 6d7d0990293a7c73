using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>The path every AP takes, executed by guest code, then all the way back: real mode -> 32-bit
/// protected mode -> long mode (64-bit) -> compatibility mode -> paging off -> 16-bit protected mode ->
/// real mode (SDM Vol. 3A 9.9 "Mode Switching", 10.8.5 "Initializing IA-32e Mode").</summary>
public unsafe class ModeSwitchRoundTripTests
{
    const ulong Gdt = 0x6000, Gdtr = 0x6100, Pml4 = 0x10000, Pdpt = 0x11000, Pd = 0x12000;
    const ulong Real = 0x7000, Pm32 = 0x7100, Lm64 = 0x7200, Compat = 0x7300, Pm16 = 0x7400, Real2 = 0x7500;
    const ushort Code32 = 0x08, Data32 = 0x10, Code64 = 0x18, Code16 = 0x20, Data16 = 0x28;

    public static TheoryData<int> Tiers => new() { 0, 1, 2 };

    [Theory, MemberData(nameof(Tiers))]
    public void Real_to_long_mode_and_back_to_real_mode(int tier)
    {
        var options = tier switch { 0 => JitOptions.InterpretOnly, 1 => JitOptions.CompileFirst, _ => new JitOptions { CompileSynchronously = true } };
        using var ram = new GuestRam(4 << 20);
        // GDT: null, flat code32, flat data32, code64, 16-bit code (limit 64 KiB), 16-bit data.
        ulong[] gdt = [0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF, 0x00AF9A000000FFFF, 0x00009A000000FFFF, 0x000092000000FFFF];
        for (int k = 0; k < gdt.Length; k++) ram.Write(Gdt + (ulong)k * 8, BitConverter.GetBytes(gdt[k]));
        ram.Write(Gdtr, [.. BitConverter.GetBytes((ushort)(gdt.Length * 8 - 1)), .. BitConverter.GetBytes((uint)Gdt)]);
        // Identity map the first 2 MiB with one large page.
        ram.Write(Pml4, BitConverter.GetBytes(Pdpt | 3));
        ram.Write(Pdpt, BitConverter.GetBytes(Pd | 3));
        ram.Write(Pd, BitConverter.GetBytes(0x83UL));

        Put(ram, Real, 16, a =>
        {
            a.cli();
            a.lgdt(__[(uint)Gdtr]);
            a.mov(eax, cr0); a.or(eax, 1); a.mov(cr0, eax);
            a.db(0xEA); a.dw((ushort)Pm32); a.dw(Code32); // jmp far Code32:Pm32
        });
        Put(ram, Pm32, 32, a =>
        {
            a.mov(ax, Data32); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.mov(eax, cr4); a.or(eax, 0x20); a.mov(cr4, eax);          // PAE
            a.mov(eax, (uint)Pml4); a.mov(cr3, eax);
            a.mov(ecx, 0xC0000080); a.rdmsr(); a.or(eax, 0x100); a.wrmsr(); // EFER.LME
            a.mov(eax, cr0); a.or(eax, unchecked((int)0x80000000)); a.mov(cr0, eax); // paging on: IA-32e active
            a.db(0xEA); a.dd((uint)Lm64); a.dw(Code64);                    // jmp far Code64:Lm64
        });
        Put(ram, Lm64, 64, a =>
        {
            a.mov(rax, 0x1234_5678_9AUL); a.mov(__qword_ptr[0x5000], rax);
            a.mov(rax, cr0); a.mov(__qword_ptr[0x5010], rax);
            a.mov(ecx, 0xC0000080); a.rdmsr(); a.mov(__dword_ptr[0x5018], eax);
            a.push(Code32); a.push((int)Compat); a.db(0x48, 0xCB);          // retfq: to compatibility mode
        });
        Put(ram, Compat, 32, a =>
        {
            a.mov(eax, cr0); a.and(eax, 0x7FFF_FFFF); a.mov(cr0, eax);      // paging off: leaves IA-32e mode
            a.mov(ecx, 0xC0000080); a.rdmsr(); a.and(eax, ~0x100); a.wrmsr();
            a.mov(eax, cr4); a.and(eax, ~0x20); a.mov(cr4, eax);
            a.db(0xEA); a.dd((uint)Pm16); a.dw(Code16);                    // jmp far Code16:Pm16
        });
        Put(ram, Pm16, 16, a =>
        {
            a.mov(ax, Data16); a.mov(ds, ax); a.mov(es, ax); a.mov(ss, ax);
            a.mov(eax, cr0); a.and(eax, ~1); a.mov(cr0, eax);
            a.db(0xEA); a.dw((ushort)Real2); a.dw(0);                       // jmp far 0000:Real2
        });
        Put(ram, Real2, 16, a =>
        {
            a.xor(ax, ax); a.mov(ds, ax); a.mov(ss, ax);
            a.mov(__word_ptr[0x5008], 0xBEEF);
            a.hlt();
        });

        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        cpu.SetReal(0, (ushort)Real, 0x6FF0);
        var exit = cpu.Run();
        Assert.True(exit == ExitReason.Hlt, $"{exit}: {cpu.ExitMessage}");
        CpuState* s = cpu.State;
        Assert.Equal(0x1234_5678_9AUL, BitConverter.ToUInt64(ram.Span(0x5000, 8)));
        Assert.Equal(0x8000_0011UL, BitConverter.ToUInt64(ram.Span(0x5010, 8)) & 0x8000_0011); // PG, ET, PE in 64-bit mode
        Assert.Equal(0x500U, BitConverter.ToUInt32(ram.Span(0x5018, 4)) & 0x500);              // LME and LMA in 64-bit mode
        Assert.Equal((ushort)0xBEEF, BitConverter.ToUInt16(ram.Span(0x5008, 2)));
        Assert.Equal(0UL, s->Cr0 & (Cr0.PE | Cr0.PG));
        Assert.Equal(0UL, s->Efer & (Efer.LME | Efer.LMA));
        Assert.Equal(ExecMode.Code16 | ExecMode.Real, s->Mode);
        Assert.Equal((ulong)Real2 + 13, s->Rip); // past HLT: xor ax,ax (2) + 2 x mov sreg (2) + mov [m16], imm16 (6) + hlt (1)
    }

    static void Put(GuestRam ram, ulong address, int bitness, Action<Assembler> body)
    {
        var a = new Assembler(bitness);
        body(a);
        ram.Write(address, CodeBytes.Assemble(a, address));
    }
}
