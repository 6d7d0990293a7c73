using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static DynaSmp.Tests.Segmentation.SegMachine;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Segmentation;

/// <summary>Ring transitions (IRETQ, INT n through a DPL-3 gate, SYSCALL/SYSRET, SYSENTER/SYSEXIT), exception
/// delivery with IST, #DF, triple fault, real-mode INT/IRET, and the descriptor-table instructions.</summary>
public unsafe class PrivilegeAndDeliveryTests
{
    public static readonly TheoryData<int> Tiers2 = new() { Tiers.Interpret, Tiers.CompileFirst };

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Ring0_to_ring3_and_back_through_INT_gate_and_SYSCALL(int tier)
    {
        using var g = Long64(tier, a =>
        {
            a.push(UData | 3);   // SS
            a.push(0x60000);     // RSP
            a.push(0x202);       // RFLAGS (IF)
            a.push(U64 | 3);     // CS
            a.push(0x2000);      // RIP
            a.iretq();
        });
        g.Load(64, 0x2000, 0x2000, a => { a.mov(eax, 0x1234); a.@int(0x80); a.std(); a.syscall(); a.hlt(); });
        g.Load(64, 0x5000, 0x5000, a => { a.hlt(); a.iretq(); });
        g.Load(64, 0x6000, 0x6000, a => { a.hlt(); a.sysretq(); });
        IdtGate64(g, 0x80, 0x5000, dpl: 3);
        g.Ram.Write(TssBase + 4, BitConverter.GetBytes(0x70000UL)); // RSP0
        CpuState* s = g.S;
        s->Efer |= Efer.SCE;
        s->Star = (0x20UL << 48) | ((ulong)K64 << 32);
        s->Lstar = 0x6000;
        s->Sfmask = RFlags.DF;
        s->NmiBlocked = 1;
        g.Cpu.ExceptionIntercept = 1u << Vector.GP;

        g.RunToHlt(); // in the INT 0x80 handler at ring 0
        Assert.Equal(0, s->NmiBlocked); // the IRETQ ended NMI blocking
        Assert.Equal(0, s->Cpl);
        Assert.Equal(0x70000UL - 40, g.Reg(R.Sp));
        Assert.Equal((ulong)(UData | 3), g.Read(0x70000 - 8, 8));  // SS
        Assert.Equal(0x60000UL, g.Read(0x70000 - 16, 8));          // RSP
        Assert.Equal(0x202UL, g.Read(0x70000 - 24, 8));            // RFLAGS
        Assert.Equal((ulong)(U64 | 3), g.Read(0x70000 - 32, 8));   // CS
        Assert.Equal(0x2007UL, g.Read(0x70000 - 40, 8));           // RIP after INT 0x80
        Assert.Equal(0UL, Flags.Get(s) & RFlags.IF);                // interrupt gate cleared IF
        Assert.Equal((ushort)0, s->Ss.Selector);                    // IA-32e: null SS with RPL 0

        g.RunToHlt(); // IRETQ back to ring 3, STD, SYSCALL: in the LSTAR handler
        Assert.Equal(0, s->Cpl);
        Assert.Equal(K64, s->Cs.Selector);
        Assert.Equal(KData, s->Ss.Selector);
        Assert.Equal(0x200AUL, g.Reg(R.Cx));                        // return RIP
        Assert.Equal(0x602UL, g.Reg(11));                          // user RFLAGS: IF | DF | bit 1
        Assert.Equal(RFlags.IF | RFlags.Reserved1, Flags.Get(s));  // DF masked by SFMASK
        Assert.Equal(0x60000UL, g.Reg(R.Sp));                      // SYSCALL keeps RSP

        Assert.Equal(ExitReason.Exception, g.Run()); // SYSRETQ to ring 3, whose HLT is #GP(0)
        Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        Assert.Equal(0UL, g.Cpu.ExitErrorCode);
        Assert.Equal(0x200AUL, g.Rip);
        Assert.Equal((ushort)(U64 | 3), s->Cs.Selector);
        Assert.Equal((ushort)(UData | 3), s->Ss.Selector);
        Assert.Equal(3, s->Cpl);
        Assert.Equal(0x602UL, Flags.Get(s));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Protected_mode_INT_from_ring3_switches_to_the_TSS_stack_and_IRET_returns(int tier)
    {
        using var g = Protected32(tier, a =>
        {
            a.push((uint)UData | 3); a.push(0x60000u); a.push(0x2u); a.push((uint)U32 | 3); a.push(0x2000u);
            a.iretd();
        });
        g.Load(32, 0x2000, 0x2000, a => { a.@int(0x80); a.mov(ebx, ss); a.int3(); });
        g.Load(32, 0x5000, 0x5000, a => { a.hlt(); a.iretd(); });
        IdtGate32(g, 0x80, K32, 0x5000, 0xE, 3);
        g.Ram.Write(TssBase + 4, BitConverter.GetBytes(0x70000u));
        g.Ram.Write(TssBase + 8, BitConverter.GetBytes((uint)KData));
        g.RunToHlt();
        // SDM Figure 6-4: SS, ESP, EFLAGS, CS, EIP on the ring-0 stack from the TSS.
        Assert.Equal(0x70000UL - 20, g.Reg(R.Sp));
        Assert.Equal(KData, g.S->Ss.Selector);
        Assert.Equal((ulong)(UData | 3), g.Read(0x70000 - 4, 4));
        Assert.Equal(0x60000UL, g.Read(0x70000 - 8, 4));
        Assert.Equal(0x2UL, g.Read(0x70000 - 12, 4));
        Assert.Equal((ulong)(U32 | 3), g.Read(0x70000 - 16, 4));
        Assert.Equal(0x2002UL, g.Read(0x70000 - 20, 4));
        Assert.Equal(ExitReason.Exception, g.Run()); // IRETD to ring 3, then INT3 (intercepted)
        Assert.Equal(Vector.BP, g.Cpu.ExitVector);
        Assert.Equal((ulong)(UData | 3), g.Reg(R.Bx));
        Assert.Equal(0x60000UL, g.Reg(R.Sp));
        Assert.Equal(3, g.S->Cpl);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void GP_from_a_bad_segment_load_is_delivered_on_the_IST_stack_with_its_error_code(int tier)
    {
        using var g = Long64(tier, a => { a.mov(eax, (uint)ExecOnly); a.mov(ds, ax); a.hlt(); });
        g.Load(64, 0x5000, 0x5000, a => a.hlt());
        IdtGate64(g, Vector.GP, 0x5000, dpl: 0, ist: 1);
        g.Ram.Write(TssBase + 0x24, BitConverter.GetBytes(0x78000UL)); // IST1
        g.Cpu.ExceptionIntercept = 0;
        g.RunToHlt();
        Assert.Equal(0x5001UL, g.Rip);
        Assert.Equal(0x78000UL - 48, g.Reg(R.Sp));
        Assert.Equal((ulong)KData, g.Read(0x78000 - 8, 8));
        Assert.Equal(0x80000UL, g.Read(0x78000 - 16, 8));
        Assert.Equal(0x2UL, g.Read(0x78000 - 24, 8));
        Assert.Equal((ulong)K64, g.Read(0x78000 - 32, 8));
        Assert.Equal(0x1005UL, g.Read(0x78000 - 40, 8)); // the faulting MOV DS
        Assert.Equal((ulong)ExecOnly, g.Read(0x78000 - 48, 8));
        Assert.Equal(KData, g.S->Ds.Selector);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void NP_on_the_GP_gate_while_delivering_GP_becomes_DF(int tier)
    {
        using var g = Long64(tier, a => { a.mov(eax, (uint)ExecOnly); a.mov(ds, ax); a.hlt(); });
        g.Load(64, 0x5000, 0x5000, a => a.hlt());
        IdtGate64(g, Vector.GP, 0x5000, dpl: 0, present: false);
        IdtGate64(g, Vector.DF, 0x5100, dpl: 0);
        g.Load(64, 0x5100, 0x5100, a => a.hlt());
        g.Cpu.ExceptionIntercept = 0;
        g.RunToHlt();
        Assert.Equal(0x5101UL, g.Rip);
        Assert.Equal(0x80000UL - 48, g.Reg(R.Sp));
        Assert.Equal(0x1005UL, g.Read(0x80000 - 40, 8));
        Assert.Equal(0UL, g.Read(0x80000 - 48, 8)); // #DF's error code is 0
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Exception_with_IDT_limit_0_triple_faults(int tier)
    {
        using var g = Protected32(tier, a => { a.nop(); a.ud2(); });
        g.S->IdtrLimit = 0;
        g.Cpu.ExceptionIntercept = 0;
        Assert.Equal(ExitReason.Shutdown, g.Run());
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Real_mode_INT_through_the_IVT_and_IRET(int tier)
    {
        using var g = Guest.Real(tier, 0x0800, 0x100, 0xFFF0, a => { a.sti(); a.@int(0x21); a.hlt(); });
        g.Load(16, 0x9010, 0x10, a => { a.hlt(); a.mov(ax, 0x55); a.iret(); });
        g.Ram.Write(0x21 * 4, [0x10, 0x00, 0x00, 0x09]); // 0900:0010
        g.S->IdtrLimit = 0x3FF;
        g.Cpu.ExceptionIntercept = 0;
        g.RunToHlt();
        Assert.Equal(0x0900, g.S->Cs.Selector);
        Assert.Equal(0xFFEAUL, g.Reg(R.Sp) & 0xFFFF);
        Assert.Equal(0x103UL, g.Read(0x8000 + 0xFFEA, 2)); // IP after INT 21h
        Assert.Equal(0x0800UL, g.Read(0x8000 + 0xFFEC, 2)); // CS
        Assert.Equal(0x202UL, g.Read(0x8000 + 0xFFEE, 2)); // FLAGS with IF
        Assert.Equal(0UL, Flags.Get(g.S) & RFlags.IF);
        g.RunToHlt();
        Assert.Equal(0x0800, g.S->Cs.Selector);
        Assert.Equal(0x104UL, g.Rip);
        Assert.Equal(0x55UL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0xFFF0UL, g.Reg(R.Sp) & 0xFFFF);
        Assert.Equal(RFlags.IF, Flags.Get(g.S) & RFlags.IF);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Sysexit_to_ring3_and_sysenter_back(int tier)
    {
        using var g = Protected32(tier, a => { a.mov(ecx, 0x60000); a.mov(edx, 0x2000); a.sysexit(); });
        g.Load(32, 0x2000, 0x2000, a => { a.mov(ebx, cs); a.mov(esi, ss); a.mov(edi, esp); a.mov(eax, 7); a.sysenter(); });
        g.Load(32, 0x3000, 0x3000, a => a.hlt());
        CpuState* s = g.S;
        s->SysenterCs = K32; s->SysenterEsp = 0x70000; s->SysenterEip = 0x3000;
        g.RunToHlt();
        Assert.Equal((ulong)(K32 + 16 | 3), g.Reg(R.Bx));
        Assert.Equal((ulong)(K32 + 24 | 3), g.Reg(R.Si));
        Assert.Equal(0x60000UL, g.Reg(R.Di));
        Assert.Equal(7UL, g.Reg(R.Ax));
        Assert.Equal(K32, s->Cs.Selector);
        Assert.Equal((ushort)(K32 + 8), s->Ss.Selector);
        Assert.Equal(0x70000UL, g.Reg(R.Sp));
        Assert.Equal(0, s->Cpl);
        Assert.Equal(ExecMode.Code32, s->Mode);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Fast_system_call_faults(int tier)
    {
        using (var g = Protected32(tier, a => a.sysenter()))
        {
            Assert.Equal(ExitReason.Exception, g.Run()); // SYSENTER_CS = 0
            Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        }
        using (var g = Long64(tier, a => a.syscall()))
        {
            Assert.Equal(ExitReason.Exception, g.Run()); // EFER.SCE = 0
            Assert.Equal(Vector.UD, g.Cpu.ExitVector);
        }
        using (var g = Long64(tier, a => { a.mov(rcx, 0x8000_0000_0000UL); a.sysretq(); }))
        {
            g.S->Efer |= Efer.SCE;
            Assert.Equal(ExitReason.Exception, g.Run()); // non-canonical RCX
            Assert.Equal(Vector.GP, g.Cpu.ExitVector);
            Assert.Equal(0, g.S->Cpl);
        }
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Lar_lsl_verr_verw_report_through_ZF_and_never_fault(int tier)
    {
        ushort[] sels = [KData, 0x100, KData, Gate, Gate, ExecOnly, Conforming, ReadOnly, KData, 0, Tss, KData | 3];
        using var g = Protected32(tier, a =>
        {
            a.mov(esi, 0x5555u);
            void Check(int k, Action<Assembler> op)
            {
                a.mov(eax, (uint)sels[k]);
                op(a);
                a.setz(__byte_ptr[0x9000 + k]);
            }
            Check(0, x => x.lar(edi, eax));
            Check(1, x => x.lar(esi, eax));
            Check(2, x => x.lsl(ebp, eax));
            Check(3, x => x.lsl(ecx, eax));
            Check(4, x => x.lar(ecx, eax));
            Check(5, x => x.verr(ax));
            Check(6, x => x.verr(ax));
            Check(7, x => x.verw(ax));
            Check(8, x => x.verw(ax));
            Check(9, x => x.verr(ax));
            Check(10, x => x.lar(edx, eax));
            Check(11, x => x.verw(ax));
            a.hlt();
        });
        g.RunToHlt();
        int[] zf = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0];
        for (int k = 0; k < zf.Length; k++) Assert.True(zf[k] == (int)g.Read(0x9000 + (ulong)k, 1), $"check {k}");
        Assert.Equal(0x00C0_9200UL, g.Reg(R.Di));  // G, D/B | P, DPL 0, S, type 2
        Assert.Equal(0x5555UL, g.Reg(R.Si));       // unchanged on failure
        Assert.Equal(0xFFFF_FFFFUL, g.Reg(R.Bp));  // byte-granular limit scaled by G
        Assert.Equal(0x8900UL, g.Reg(R.Dx));       // available 32-bit TSS (as written in the GDT)
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Descriptor_table_instructions_and_swapgs(int tier)
    {
        using var g = Long64(tier, a =>
        {
            a.mov(eax, 0x9000);
            a.lgdt(__[rax]);
            a.sidt(__[rax + 0x10]);
            a.sgdt(__[rax + 0x20]);
            a.mov(ecx, (uint)Tss);
            a.ltr(cx);
            a.str(ebx);
            a.mov(ecx, (uint)Ldt);
            a.lldt(cx);
            a.sldt(edx);
            a.swapgs();
            a.hlt();
        });
        g.Ram.Write(0x9000, [0x97, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00]);
        g.Ram.Write(0x10000 + 0x10000, g.Ram.Span(GdtBase, 0x98).ToArray()); // the same GDT at 0x20000
        CpuState* s = g.S;
        s->Tr = default;
        s->KernelGsBase = 0x1234;
        g.RunToHlt();
        Assert.Equal(0x20000UL, s->GdtrBase);
        Assert.Equal(0x97u, s->GdtrLimit);
        Assert.Equal(0xFFFUL, g.Read(0x9010, 2));
        Assert.Equal(IdtBase, g.Read(0x9012, 8));
        Assert.Equal(0x97UL, g.Read(0x9020, 2));
        Assert.Equal(0x20000UL, g.Read(0x9022, 8));
        Assert.Equal((ulong)Tss, g.Reg(R.Bx));
        Assert.Equal((ulong)Ldt, g.Reg(R.Dx));
        Assert.Equal(TssBase, s->Tr.Base);
        Assert.Equal(0x8BUL, g.Read(0x20000 + Tss + 5, 1)); // LTR marked the TSS busy
        Assert.Equal(0x89UL, g.Read(GdtBase + Tss + 5, 1));  // the old table is untouched
        Assert.Equal(0x1234UL, s->Gs.Base);
        Assert.Equal(0UL, s->KernelGsBase);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Privileged_descriptor_instructions_fault_at_CPL3(int tier)
    {
        using var g = Long64(tier, a => { a.mov(ecx, (uint)Tss); a.ltr(cx); a.hlt(); });
        g.S->Cs.Selector = U64 | 3;
        g.S->Tr = default;
        g.Cpu.UpdateMode();
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        Assert.Equal(0UL, g.Cpu.ExitErrorCode);
        Assert.Equal(0x1005UL, g.Rip);
        Assert.Equal((ushort)0, g.S->Tr.Selector);
    }
}
