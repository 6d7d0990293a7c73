using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Machine.Storm;

/// <summary>
/// The storm guest: every running vCPU sends INIT assert / de-assert, STARTUP, NMI and fixed IPIs to seeded random
/// targets (itself, another vCPU, or the self / all-including-self / all-excluding-self shorthands), through the xAPIC
/// page or the x2APIC MSRs (each vCPU toggles between them when x2APIC is offered), halts on the LAPIC timer or parks
/// with IF=0 until an NMI, and spins on RDTSC. Every start (the BSP's first, every SIPI) runs the real-mode trampoline
/// again and checks in by incrementing its epoch counter.
/// <para>Guest INITs never reach the BSP (the machine has no firmware at the reset vector 0xFFFFFFF0): an INIT whose
/// destination would include vCPU 0 is sent as an INIT de-assert instead. Host-side injection covers INIT on the BSP.</para>
/// <para>NMIs can arrive anywhere, so the layout makes each window safe: one table at address 0 serves as the real-mode
/// IVT (vector 2 at bytes 8..11) and the protected-mode IDT (8-byte gates); the real-mode NMI handler restarts the
/// trampoline with a constant frame (so vCPUs sharing the early stack cannot corrupt each other), and GDT selector
/// 0x0800 is a 16-bit code segment at 0x8000, so an NMI taken between setting CR0.PE and the far jump returns to a
/// valid CS.</para>
/// </summary>
public static class StormGuest
{
    public const ulong Gdt = 0x1000, GdtPointer = 0x2000, IdtPointer = 0x2008;
    public const ulong Epochs = 0x3000, RngState = 0x3400, CpuCount = 0x3800, Flags = 0x3804, Seed = 0x3808;
    public const ulong Trampoline = 0x8000, RealModeNmi = 0x8200, ProtectedCode = 0x1_0000;
    public const byte StartupVector = (byte)(Trampoline >> 12);
    public const ushort TrampolineSegment = (ushort)(Trampoline >> 4);
    public const byte TimerVector = 0x30, FixedBase = 0x40;
    const uint Lapic = 0xFEE0_0000;
    public const ulong MemoryBytes = 4 << 20;

    /// <summary>Writes the guest into <paramref name="vm"/>'s RAM and points the BSP at the trampoline (the state a
    /// SIPI with <see cref="StartupVector"/> would give it). <paramref name="seed"/> seeds every vCPU's generator.</summary>
    public static void Load(Vm vm, uint seed)
    {
        var ram = vm.Ram;
        // GDT: 0x08 flat 32-bit code, 0x10 flat data, 0x0800 16-bit code at the trampoline (see the class comment).
        ram.Write(Gdt + 0x08, BitConverter.GetBytes(0x00CF_9B00_0000_FFFFUL));
        ram.Write(Gdt + 0x10, BitConverter.GetBytes(0x00CF_9300_0000_FFFFUL));
        ram.Write(Gdt + 0x800, BitConverter.GetBytes(0x0000_9B00_8000_FFFFUL));
        ram.Write(GdtPointer, [0x0F, 0x08, Lo(Gdt), Lo(Gdt >> 8), 0, 0]);
        ram.Write(IdtPointer, [0xFF, 0x07, 0, 0, 0, 0]);
        ram.Write(CpuCount, BitConverter.GetBytes((uint)vm.Vcpus.Length));
        ram.Write(Flags, BitConverter.GetBytes(vm.Config.X2Apic ? 1u : 0u));
        ram.Write(Seed, BitConverter.GetBytes(seed == 0 ? 1u : seed));

        ram.Write(Trampoline, CodeBytes.Assemble(TrampolineCode(), Trampoline - ((ulong)TrampolineSegment << 4)));
        var nmi = new Assembler(16);
        nmi.push((ushort)0x0002);            // FLAGS
        nmi.push(TrampolineSegment);         // CS
        nmi.push((ushort)0);                 // IP: restart the trampoline
        nmi.iret();
        ram.Write(RealModeNmi, CodeBytes.Assemble(nmi, RealModeNmi - Trampoline));
        ram.Write(8, [Lo(RealModeNmi - Trampoline), Lo((RealModeNmi - Trampoline) >> 8), Lo(TrampolineSegment), Lo(TrampolineSegment >> 8)]);

        var (code, nmiHandler, irqHandler) = ProtectedModeCode();
        ram.Write(ProtectedCode, code);
        WriteGate(ram, 2, nmiHandler);
        WriteGate(ram, TimerVector, irqHandler);
        for (int v = FixedBase; v < FixedBase + 16; v++) WriteGate(ram, v, irqHandler);

        var bsp = vm.Vcpus[vm.Config.BspId].Core;
        bsp.SetReal(TrampolineSegment, 0, 0);
        bsp.ExceptionIntercept = 0;
    }

    static byte Lo(ulong x) => (byte)(x & 0xFF);

    static void WriteGate(Jit.Memory.GuestRam ram, int vector, ulong handler)
    {
        ulong gate = (handler & 0xFFFF) | (0x08UL << 16) | (0x8E00UL << 32) | ((handler >> 16) << 48);
        ram.Write((ulong)vector * 8, BitConverter.GetBytes(gate));
    }

    static Assembler TrampolineCode()
    {
        var t = new Assembler(16);
        t.cli();
        t.xor(ax, ax);
        t.mov(ds, ax);
        t.mov(ss, ax);
        t.mov(sp, 0x3FF0);                    // shared until the APIC ID is known (see RealModeNmi)
        t.mov(eax, 1);
        t.cpuid();
        t.shr(ebx, 24);
        t.shl(bx, 6);
        t.mov(ax, 0x8000);
        t.sub(ax, bx);
        t.mov(sp, ax);                        // own real-mode stack: 0x8000 - id * 0x40
        t.db(0x66, 0x0F, 0x01, 0x16, Lo(GdtPointer), Lo(GdtPointer >> 8)); // lgdt [GdtPointer] (32-bit base)
        t.db(0x66, 0x0F, 0x01, 0x1E, Lo(IdtPointer), Lo(IdtPointer >> 8)); // lidt [IdtPointer]
        t.mov(eax, cr0);
        t.or(al, 1);
        t.mov(cr0, eax);
        t.db(0x66, 0xEA, Lo(ProtectedCode), Lo(ProtectedCode >> 8), Lo(ProtectedCode >> 16), Lo(ProtectedCode >> 24), 0x08, 0x00);
        return t;
    }

    /// <summary>The 32-bit part; returns the code and the addresses of the NMI and interrupt handlers.</summary>
    static (byte[] Code, ulong Nmi, ulong Irq) ProtectedModeCode()
    {
        var a = new Assembler(32);
        Label loop = a.CreateLabel(), send = a.CreateLabel(), haveSeed = a.CreateLabel(), notBsp = a.CreateLabel();
        Label nmi = a.CreateLabel(), irq = a.CreateLabel(), apicSetup = a.CreateLabel(), eoiX2 = a.CreateLabel(), irqDone = a.CreateLabel();
        Label opFixed = a.CreateLabel(), opNmi = a.CreateLabel(), opInit = a.CreateLabel(), opDeassert = a.CreateLabel(), opSipi = a.CreateLabel();
        Label opHlt = a.CreateLabel(), opPark = a.CreateLabel(), opToggle = a.CreateLabel(), opDelay = a.CreateLabel();
        Label physical = a.CreateLabel(), destDone = a.CreateLabel(), sendX2 = a.CreateLabel(), sendDone = a.CreateLabel();
        Label opInitSend = a.CreateLabel();
        Label timerX2 = a.CreateLabel(), timerArmed = a.CreateLabel(), toX2 = a.CreateLabel(), delayLoop = a.CreateLabel();

        a.mov(ax, 0x10);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
        a.mov(eax, 1);
        a.cpuid();
        a.shr(ebx, 24);
        a.mov(esi, ebx);                                      // esi = APIC ID = vCPU index
        a.mov(esp, esi);
        a.shl(esp, 10);
        a.add(esp, 0x4_0400);                                 // own stack: 0x40000 + (id + 1) * 1 KiB
        a.@lock.inc(__dword_ptr[esi * 4 + (uint)Epochs]);    // check in: one epoch per start
        a.call(apicSetup);
        a.mov(ebp, __dword_ptr[esi * 4 + (uint)RngState]);    // the generator survives INIT (it lives in RAM)
        a.test(ebp, ebp);
        a.jnz(haveSeed);
        a.imul(ebp, esi, unchecked((int)0x9E37_79B9));
        a.xor(ebp, __dword_ptr[(uint)Seed]);
        a.or(ebp, 1);
        a.Label(ref haveSeed);
        a.test(esi, esi);
        a.jnz(notBsp);
        a.xor(edx, edx);                                      // BSP: wake everyone (INIT, STARTUP, all-excluding-self)
        a.mov(eax, 0x000C_C500);
        a.call(send);
        a.mov(eax, 0x000C_0600 | StartupVector);
        a.call(send);
        a.Label(ref notBsp);
        a.sti();

        // ---- the storm loop: ebp = LCG state; ebx = ICR low template; edx = physical destination ----
        a.Label(ref loop);
        a.imul(ebp, ebp, 1103515245);
        a.add(ebp, 12345);
        a.mov(__dword_ptr[esi * 4 + (uint)RngState], ebp);
        // Destination: (ebp >> 4) & 7 = 0..3 another random vCPU, 4 self shorthand, 5 all-incl, 6 all-excl, 7 own ID.
        a.mov(eax, ebp);
        a.shr(eax, 4);
        a.and(eax, 7);
        a.xor(ebx, ebx);
        a.mov(edx, esi);
        a.cmp(eax, 7);
        a.je(destDone);
        a.cmp(eax, 4);
        a.jb(physical);
        a.sub(eax, 3);
        a.shl(eax, 18);                                       // shorthand 1..3 in bits 19:18
        a.mov(ebx, eax);
        a.jmp(destDone);
        a.Label(ref physical);
        a.mov(eax, ebp);
        a.shr(eax, 20);
        a.xor(edx, edx);
        a.div(__dword_ptr[(uint)CpuCount]);                   // edx = random vCPU
        a.Label(ref destDone);
        a.mov(eax, ebp);
        a.shr(eax, 16);
        a.and(eax, 15);
        a.cmp(eax, 5); a.jb(opFixed);
        a.cmp(eax, 7); a.jb(opNmi);
        a.cmp(eax, 9); a.jb(opInit);
        a.cmp(eax, 9); a.je(opDeassert);
        a.cmp(eax, 12); a.jb(opSipi);
        a.cmp(eax, 12); a.je(opHlt);
        a.cmp(eax, 13); a.je(opPark);
        a.cmp(eax, 14); a.je(opToggle);
        a.jmp(opDelay);

        a.Label(ref opFixed);
        a.mov(eax, ebp);
        a.shr(eax, 24);
        a.and(eax, 15);
        a.add(eax, FixedBase);
        a.or(eax, ebx);
        a.call(send);
        a.jmp(loop);

        a.Label(ref opNmi);
        a.lea(eax, __[ebx + 0x400]);
        a.call(send);
        a.jmp(loop);

        a.Label(ref opInit);
        // Would it reach the BSP (vCPU 0)? physical: destination 0; self: sent by the BSP; all-including-self: always;
        // all-excluding-self: sent by an AP.
        {
            Label reachesBsp = a.CreateLabel(), phys = a.CreateLabel(), self = a.CreateLabel();
            a.mov(eax, ebx);
            a.shr(eax, 18);
            a.cmp(eax, 0);
            a.je(phys);
            a.cmp(eax, 1);
            a.je(self);
            a.cmp(eax, 2);
            a.je(reachesBsp);
            a.test(esi, esi);
            a.jz(opInitSend);
            a.jmp(reachesBsp);
            a.Label(ref phys);
            a.test(edx, edx);
            a.jnz(opInitSend);
            a.jmp(reachesBsp);
            a.Label(ref self);
            a.test(esi, esi);
            a.jnz(opInitSend);
            a.Label(ref reachesBsp);
            a.jmp(opDeassert);                                // an INIT for the BSP goes out as a de-assert
        }
        a.Label(ref opInitSend);
        a.lea(eax, __[ebx + 0xC500]);
        a.call(send);
        a.jmp(loop);

        a.Label(ref opDeassert);
        a.lea(eax, __[ebx + 0x8500]);
        a.call(send);
        a.jmp(loop);

        a.Label(ref opSipi);
        a.lea(eax, __[ebx + 0x600 + StartupVector]);
        a.call(send);
        a.jmp(loop);

        // One-shot timer, then HLT with IF=1. Armed with IF=0 and halted through STI's one-instruction shadow: a timer
        // that fires between arming and HLT must wake the HLT, not run the handler before it and leave the BSP halted
        // for good (a 300 s deterministic 4x16 storm found exactly that with the plain arm-then-HLT order).
        a.Label(ref opHlt);
        a.cli();
        a.mov(eax, ebp);
        a.shr(eax, 22);
        a.add(eax, 100);
        a.test(edi, edi);
        a.jnz(timerX2);
        a.mov(__dword_ptr[Lapic + 0x380], eax);
        a.jmp(timerArmed);
        a.Label(ref timerX2);
        a.xor(edx, edx);
        a.mov(ecx, 0x838);
        a.wrmsr();
        a.Label(ref timerArmed);
        a.sti();
        a.hlt();
        a.jmp(loop);

        a.Label(ref opPark);                                  // IF=0: only NMI, INIT or SIPI end this (never the BSP,
        a.test(esi, esi);                                     // so someone always runs)
        a.jz(opDelay);
        a.cli();
        a.hlt();
        a.sti();
        a.jmp(loop);

        a.Label(ref opToggle);                                // xAPIC <-> x2APIC (through disabled), if offered
        a.test(__dword_ptr[(uint)Flags], 1);
        a.jz(loop);
        a.cli();
        a.mov(ecx, 0x1B);
        a.rdmsr();
        a.test(eax, 0x400);
        a.jz(toX2);
        a.and(eax, ~0xC00);
        a.wrmsr();                                            // disabled (resets the APIC)
        a.or(eax, 0x800);
        a.wrmsr();                                            // xAPIC
        a.call(apicSetup);
        a.sti();
        a.jmp(loop);
        a.Label(ref toX2);
        a.or(eax, 0xC00);
        a.wrmsr();
        a.call(apicSetup);
        a.sti();
        a.jmp(loop);

        a.Label(ref opDelay);                                 // RDTSC spin: virtual time in deterministic mode
        a.rdtsc();
        a.mov(ecx, eax);
        a.mov(ebx, ebp);
        a.shr(ebx, 24);
        a.Label(ref delayLoop);
        a.pause();
        a.rdtsc();
        a.sub(eax, ecx);
        a.cmp(eax, ebx);
        a.jb(delayLoop);
        a.jmp(loop);

        // send: eax = ICR low, edx = destination (vCPU index); through x2APIC MSR 0x830 or the xAPIC ICR.
        a.Label(ref send);
        a.test(edi, edi);
        a.jnz(sendX2);
        a.shl(edx, 24);
        a.mov(__dword_ptr[Lapic + 0x310], edx);
        a.mov(__dword_ptr[Lapic + 0x300], eax);
        a.jmp(sendDone);
        a.Label(ref sendX2);
        a.mov(ecx, 0x830);
        a.wrmsr();
        a.Label(ref sendDone);
        a.ret();

        // apicSetup: edi = 1 in x2APIC mode; software-enable; LVT timer = TimerVector, one-shot. Clobbers eax, ecx, edx.
        {
            Label x2 = a.CreateLabel();
            Label enabled = a.CreateLabel();
            a.Label(ref apicSetup);
            a.mov(ecx, 0x1B);
            a.rdmsr();
            a.test(eax, 0x800);                               // an INIT keeps IA32_APIC_BASE: one accepted between
            a.jnz(enabled);                                   // the toggle's two WRMSRs restarts us hardware-disabled
            a.or(eax, 0x800);
            a.wrmsr();
            a.Label(ref enabled);
            a.shr(eax, 10);
            a.and(eax, 1);
            a.mov(edi, eax);
            a.jnz(x2);
            a.mov(__dword_ptr[Lapic + 0xF0], 0x1FF);
            a.mov(__dword_ptr[Lapic + 0x320], TimerVector);
            a.ret();
            a.Label(ref x2);
            a.xor(edx, edx);
            a.mov(eax, 0x1FF);
            a.mov(ecx, 0x80F);
            a.wrmsr();
            a.mov(eax, TimerVector);
            a.mov(ecx, 0x832);
            a.wrmsr();
            a.ret();
        }

        a.Label(ref nmi);
        a.iretd();

        a.Label(ref irq);                                     // EOI in whichever mode the APIC is in now
        a.push(eax);
        a.push(ecx);
        a.push(edx);
        a.mov(ecx, 0x1B);
        a.rdmsr();
        a.test(eax, 0x400);
        a.jnz(eoiX2);
        a.mov(__dword_ptr[Lapic + 0xB0], 0);
        a.jmp(irqDone);
        a.Label(ref eoiX2);
        a.xor(eax, eax);
        a.xor(edx, edx);
        a.mov(ecx, 0x80B);
        a.wrmsr();
        a.Label(ref irqDone);
        a.pop(edx);
        a.pop(ecx);
        a.pop(eax);
        a.iretd();

        var bytes = new CodeBytes();
        var result = a.Assemble(bytes, ProtectedCode, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return (bytes.ToArray(), result.GetLabelRIP(nmi), result.GetLabelRIP(irq));
    }
}
