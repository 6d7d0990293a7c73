using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static DynaSmp.Machine.Guests.GuestLayout;

namespace DynaSmp.Machine.Guests;

/// <summary>
/// The AP's first code, copied by the BSP to <see cref="GuestLayout.TrampolineBase"/> (one page below 1 MiB, so the
/// STARTUP vector can name it). Same structure as Linux's arch/x86/realmode/rm/trampoline_64.S: real mode -> 32-bit
/// protected mode -> long mode, then an indirect jump through the header's 64-bit entry field, which the BSP patches
/// (as Linux patches trampoline_header.start) together with CR3, CR4, EFER and the GDT base.
/// </summary>
static class ApTrampoline
{
    const uint Cr0ProtectedOnly = BuiltinGuest.Cr0Long & ~BuiltinGuest.Cr0Pg;

    /// <summary>The page image (<see cref="GuestLayout.TrSize"/> bytes) with the header fields still zero.</summary>
    public static byte[] Build()
    {
        var page = new byte[TrSize];
        Place(page, 0, RealMode(), TrStartup32);
        Place(page, TrStartup32, Startup32(), TrStartup64);
        Place(page, TrStartup64, Startup64(), TrStart);

        // tr_idt: limit 0, base 0 (an empty IDT: any fault before the kernel's own IDT shuts the AP down).
        // tr_gdt: limit, base = TrampolineBase + TrGdt. The BSP rewrites the base at copy time, as Linux relocates it.
        BitConverter.TryWriteBytes(page.AsSpan((int)TrGdtPointer), (ushort)(4 * 8 - 1));
        BitConverter.TryWriteBytes(page.AsSpan((int)TrGdtPointer + 2), TrampolineBase + TrGdt);
        BuiltinGuest.WriteGdt(page.AsSpan((int)TrGdt));
        return page;
    }

    static void Place(byte[] page, uint offset, byte[] code, uint limit)
    {
        if (offset + code.Length > limit)
            throw new InvalidOperationException($"trampoline piece at 0x{offset:X} is {code.Length} bytes, overruns 0x{limit:X}");
        code.CopyTo(page, (int)offset);
    }

    // trampoline_start: entered by STARTUP with CS = vector << 8, IP = 0, real mode. Assembled at IP 0.
    static byte[] RealMode()
    {
        var a = new Assembler(16);
        var noLongMode = a.CreateLabel();
        var verify = a.CreateLabel();
        var verifyFail = a.CreateLabel();

        a.cli();
        a.wbinvd();
        a.mov(ax, cs);             // code, data and stack all in the trampoline page
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(esp, TrStackTop);
        a.call(verify);            // like Linux's verify_cpu: no long mode -> park
        a.test(eax, eax);
        a.jnz(noLongMode);

        // lidtl/lgdtl: the 0x66 prefix makes LGDT load a 32-bit base (SDM Vol. 2A LGDT: a 16-bit operand size loads
        // only 24 bits), which is what lets Linux keep the GDT anywhere.
        a.db(0x66);
        a.lidt(__[TrIdtPointer]);
        a.db(0x66);
        a.lgdt(__[TrGdtPointer]);
        a.mov(edx, DataSelector);
        a.mov(eax, Cr0ProtectedOnly);
        a.mov(cr0, eax);
        // ljmpl $Code32Selector, $startup_32: 66 EA ptr16:32 (Iced would pick ptr16:16 in a 16-bit assembler).
        uint target = TrampolineBase + TrStartup32;
        a.db(0x66, 0xEA, (byte)target, (byte)(target >> 8), (byte)(target >> 16), (byte)(target >> 24),
            (byte)Code32Selector, (byte)(Code32Selector >> 8));

        a.Label(ref noLongMode);
        a.hlt();
        a.jmp(noLongMode);

        // verify: EAX = 0 when CPUID.80000001H:EDX.LM[bit 29] is set, else 1.
        a.Label(ref verify);
        a.push(ebx);
        a.mov(eax, 0x8000_0000);
        a.cpuid();
        a.cmp(eax, 0x8000_0001);
        a.jb(verifyFail);
        a.mov(eax, 0x8000_0001);
        a.cpuid();
        a.bt(edx, 29);
        a.jnc(verifyFail);
        a.xor(eax, eax);
        a.pop(ebx);
        a.ret();
        a.Label(ref verifyFail);
        a.mov(eax, 1);
        a.pop(ebx);
        a.ret();
        return BuiltinGuest.Assemble(a, 0);
    }

    // startup_32: flat 32-bit protected mode, DX = data selector. Load the BSP's paging state and enter long mode.
    static byte[] Startup32()
    {
        var a = new Assembler(32);
        var writeEfer = a.CreateLabel();
        var doneEfer = a.CreateLabel();
        const uint b = TrampolineBase;

        a.mov(ss, edx);
        a.mov(esp, b + TrStackTop);
        a.mov(ds, edx);
        a.mov(es, edx);
        a.mov(fs, edx);
        a.mov(gs, edx);
        a.mov(eax, __dword_ptr[b + TrCr4]);
        a.mov(cr4, eax);                        // PAE before paging (SDM Vol. 3A 10.8.5 "Initializing IA-32e Mode")
        a.mov(eax, __dword_ptr[b + TrCr3]);
        a.mov(cr3, eax);
        // EFER: write only if different, as Linux does (skip a serialising WRMSR when the value is already right).
        a.mov(ecx, BuiltinGuest.MsrEfer);
        a.rdmsr();
        a.cmp(eax, __dword_ptr[b + TrEfer]);
        a.jne(writeEfer);
        a.cmp(edx, __dword_ptr[b + TrEfer + 4]);
        a.je(doneEfer);
        a.Label(ref writeEfer);
        a.mov(eax, __dword_ptr[b + TrEfer]);
        a.mov(edx, __dword_ptr[b + TrEfer + 4]);
        a.wrmsr();
        a.Label(ref doneEfer);
        a.mov(eax, BuiltinGuest.Cr0Long);       // CR0.PG with EFER.LME set activates IA-32e mode
        a.mov(cr0, eax);
        a.jmp(Code64Selector, b + TrStartup64); // ljmpl into the 64-bit code segment
        return BuiltinGuest.Assemble(a, b + TrStartup32);
    }

    // startup_64: jmp *tr_start(%rip). The kernel side (secondary_startup_64) lives in the image.
    static byte[] Startup64()
    {
        var a = new Assembler(64);
        a.AddInstruction(Instruction.Create(Code.Jmp_rm64, new MemoryOperand(Register.RIP, (long)(TrampolineBase + TrStart))));
        return BuiltinGuest.Assemble(a, TrampolineBase + TrStartup64);
    }
}
