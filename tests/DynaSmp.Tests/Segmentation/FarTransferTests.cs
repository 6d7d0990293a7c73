using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static DynaSmp.Tests.Segmentation.SegMachine;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Segmentation;

/// <summary>Far JMP/CALL/RET between 16-, 32- and 64-bit code, call gates, and IRET/RETF to outer privilege.</summary>
public unsafe class FarTransferTests
{
    public static readonly TheoryData<int> Tiers2 = new() { Tiers.Interpret, Tiers.CompileFirst };

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Far_transfers_between_64_32_and_16_bit_code(int tier)
    {
        // 64-bit: CALL m16:32 to compatibility-mode code, which RETFs; JMP m16:32 to 16-bit code, which jumps
        // (ptr16:16) to 32-bit code, which jumps (ptr16:32) back to 64-bit code.
        using var g = Long64(tier, a =>
        {
            a.mov(eax, 0x9000);
            a.call(__fword_ptr[rax]);
            a.mov(ebx, eax);
            a.mov(eax, 0x9008);
            a.jmp(__fword_ptr[rax]);
        });
        g.Ram.Write(0x9000, [0x00, 0x20, 0, 0, (byte)K32, 0]);
        g.Ram.Write(0x9008, [0x00, 0x30, 0, 0, (byte)K16, 0]);
        g.Load(32, 0x2000, 0x2000, a => { a.mov(eax, 0x32); a.retf(); });
        g.Load(16, 0x3000, 0x3000, a => { a.mov(cx, 0x16); a.jmp(K32, 0x4000); });
        g.Load(32, 0x4000, 0x4000, a => { a.mov(edx, 0x3232); a.jmp(K64, 0x5000); });
        g.Load(64, 0x5000, 0x5000, a => { a.mov(rsi, 0x6464_0000_0000UL); a.hlt(); });
        g.RunToHlt();
        Assert.Equal(0x32UL, g.Reg(R.Bx));
        Assert.Equal(0x16UL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0x3232UL, g.Reg(R.Dx));
        Assert.Equal(0x6464_0000_0000UL, g.Reg(R.Si));
        Assert.Equal(K64, g.S->Cs.Selector);
        Assert.Equal(ExecMode.Code64, g.S->Mode);
        Assert.Equal(0x80000UL, g.Reg(R.Sp)); // the CALL pushed 2 x 4 bytes, the RETF popped them
        // The 32-bit CALL pushed CS (zero-extended) above EIP.
        Assert.Equal((ulong)K64, g.Read(0x80000 - 4, 4));
        Assert.Equal(1, (int)(g.Read(GdtBase + K16 + 5, 1) & 1)); // accessed
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Far_jmp_checks_the_target_code_segment(int tier)
    {
        using var g = Long64(tier, a =>
        {
            a.mov(eax, 0x9000);
            a.jmp(__fword_ptr[rax]);
        });
        g.Ram.Write(0x9000, [0x00, 0x20, 0, 0, U32 | 3, 0]); // nonconforming DPL 3 code from CPL 0
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        Assert.Equal((ulong)U32, g.Cpu.ExitErrorCode);
        Assert.Equal(0x1005UL, g.Rip);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Far_jmp_to_a_TSS_is_unsupported_hardware_task_switching(int tier)
    {
        using var g = Protected32(tier, a => a.jmp(Tss, 0));
        Assert.Equal(ExitReason.Unsupported, g.Run());
        Assert.Contains("hardware task switching", g.Cpu.ExitMessage);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Real_mode_far_call_and_retf_imm(int tier)
    {
        using var g = Guest.Real(tier, 0x0800, 0x100, 0xFFF0, a =>
        {
            a.push(0x1111);
            a.call(0x0900, 0x0020);
            a.hlt();
        });
        g.Load(16, 0x9020, 0x20, a => { a.mov(bx, cs); a.retf(2); });
        g.RunToHlt();
        Assert.Equal(0x0900UL, g.Reg(R.Bx) & 0xFFFF);
        Assert.Equal(0x0800, g.S->Cs.Selector);
        Assert.Equal(0x8000UL, g.S->Cs.Base);
        Assert.Equal(0xFFF0UL, g.Reg(R.Sp) & 0xFFFF); // return address and the pushed word released
        Assert.Equal(0x100UL + 3 + 5 + 1, g.Rip);     // after HLT
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Ring3_call_gate_to_ring0_copies_parameters_and_retf_returns_to_ring3(int tier)
    {
        // 32-bit protected mode. Ring 0 IRETDs to ring 3; ring 3 pushes two parameters and calls a DPL-3 call gate
        // (2 parameters) to ring-0 code, which checks its frame and RETF 8s back.
        using var g = Protected32(tier, a =>
        {
            a.push((uint)UData | 3);  // SS
            a.push(0x60000u);         // ESP
            a.push(0x2u);             // EFLAGS
            a.push((uint)U32 | 3);    // CS
            a.push(0x2000u);          // EIP
            a.iretd();
        });
        g.Load(32, 0x2000, 0x2000, a =>
        {
            a.push(0xAAAAu);
            a.push(0xBBBBu);
            a.call(Gate | 3, 0);
            a.mov(edi, esp);
            a.mov(esi, ds);
            a.int3();
        });
        g.Load(32, 0x3000, 0x3000, a =>
        {
            a.mov(eax, esp);
            a.mov(ebx, ss);
            a.retf(8);
        });
        g.WriteU64(GdtBase + Gate, GateDesc(K32, 0x3000, 0xC, 3, 2));
        g.Ram.Write(TssBase + 4, BitConverter.GetBytes(0x70000u)); // ESP0
        g.Ram.Write(TssBase + 8, BitConverter.GetBytes((uint)KData)); // SS0
        Assert.Equal(ExitReason.Exception, g.Run()); // the INT3 at ring 3 (intercepted)
        Assert.Equal(Vector.BP, g.Cpu.ExitVector);
        // Inner stack (SDM Figure 5-13): SS, ESP, param 1 (pushed first), param 2, CS, EIP.
        Assert.Equal(0x70000UL - 24, g.Reg(R.Ax));
        Assert.Equal((ulong)KData, g.Reg(R.Bx));
        Assert.Equal((ulong)(UData | 3), g.Read(0x70000 - 4, 4));
        Assert.Equal(0x60000UL - 8, g.Read(0x70000 - 8, 4));
        Assert.Equal(0xAAAAUL, g.Read(0x70000 - 12, 4));
        Assert.Equal(0xBBBBUL, g.Read(0x70000 - 16, 4));
        Assert.Equal((ulong)(U32 | 3), g.Read(0x70000 - 20, 4));
        Assert.Equal(0x2000UL + 2 * 5 + 7, g.Read(0x70000 - 24, 4));
        // Back at ring 3: the parameters released, DS (DPL 0 data) nulled by the return to CPL 3.
        Assert.Equal(0x60000UL, g.Reg(R.Di));
        Assert.Equal(0UL, g.Reg(R.Si));
        Assert.Equal(3, g.S->Cpl);
        Assert.Equal((ushort)(UData | 3), g.S->Ss.Selector);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Long_mode_call_gate_switches_to_RSP0_and_retfq_pops_SS_RSP(int tier)
    {
        using var g = Long64(tier, a =>
        {
            a.push(UData | 3);
            a.push(0x60000);
            a.push(0x2);
            a.push(U64 | 3);
            a.push(0x2000);
            a.iretq();
        }, gateTarget: 0x3000);
        g.Load(64, 0x2000, 0x2000, a =>
        {
            a.mov(eax, 0x9000);
            a.call(__qword_ptr[rax]); // placeholder replaced below by CALL m16:64 bytes
        });
        // CALL FAR m16:64 through the gate: REX.W FF /3 [rax]; selector = gate, offset ignored.
        g.Ram.Write(0x2005, [0x48, 0xFF, 0x18, 0xCC]);
        g.Ram.Write(0x9000, [0, 0, 0, 0, 0, 0, 0, 0, Gate | 3, 0]);
        g.Load(64, 0x3000, 0x3000, a =>
        {
            a.mov(rbx, rsp);
            a.mov(ecx, ss);
            a.db(0x48, 0xCB); // RETFQ
        });
        g.Ram.Write(TssBase + 4, BitConverter.GetBytes(0x70000UL)); // RSP0
        Assert.Equal(ExitReason.Exception, g.Run()); // INT3 at ring 3
        Assert.Equal(Vector.BP, g.Cpu.ExitVector);
        Assert.Equal(0x70000UL - 32, g.Reg(R.Bx));
        Assert.Equal(0UL, g.Reg(R.Cx)); // IA-32e: the inner SS is null with RPL 0
        Assert.Equal((ulong)(UData | 3), g.Read(0x70000 - 8, 8));
        Assert.Equal(0x60000UL, g.Read(0x70000 - 16, 8));
        Assert.Equal((ulong)(U64 | 3), g.Read(0x70000 - 24, 8));
        Assert.Equal(0x2008UL, g.Read(0x70000 - 32, 8));
        Assert.Equal(3, g.S->Cpl);
        Assert.Equal(0x60000UL, g.Reg(R.Sp));
        Assert.Equal((ushort)(UData | 3), g.S->Ss.Selector);
        Assert.Equal(0x2009UL, g.Rip);
    }
}
