using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>The x87 state-management subset and FXSAVE/FXRSTOR (SDM Vol. 1 Table 10-2 layout).</summary>
public unsafe class X87AndFxsaveTests
{
    const ulong Area = SysMachine.DataAddr;

    static void Fill(SysMachine m)
    {
        var s = m.S;
        s->FpuControl = 0x027F; s->FpuStatus = 0x3800; s->FpuTag = 0x81; s->FpuOpcode = 0x5D9;
        s->FpuIp = 0x1111_2222_3333_4444; s->FpuDp = 0x5555_6666_7777_8888; s->FpuCs = 0x33; s->FpuDs = 0x2B;
        for (int k = 0; k < 80; k++) s->FpuRegs[k] = (byte)(k + 1);
        for (int k = 0; k < 32; k++) s->Xmm[k] = 0x0101_0101_0101_0101UL * (ulong)(k + 1);
        s->Mxcsr = 0x1FA0;
    }

    static ushort U16(SysMachine m, ulong off) => BitConverter.ToUInt16(m.Mem(Area + off, 2));
    static uint U32(SysMachine m, ulong off) => BitConverter.ToUInt32(m.Mem(Area + off, 4));
    static ulong U64(SysMachine m, ulong off) => BitConverter.ToUInt64(m.Mem(Area + off, 8));

    [Theory, InlineData(0), InlineData(1)]
    public void Fxsave64_layout(int tier)
    {
        using var m = new SysMachine(tier, a => a.fxsave64(__[rbx]));
        m.Gpr(3) = Area;
        m.Mem(Area, 512).Fill(0xCC);
        Fill(m);
        m.RunToHlt();
        Assert.Equal(0x027F, U16(m, 0));                  // FCW
        Assert.Equal(0x3800, U16(m, 2));                  // FSW
        Assert.Equal(0x81, m.Mem(Area + 4, 1)[0]);        // abridged FTW
        Assert.Equal(0x5D9, U16(m, 6));                   // FOP
        Assert.Equal(0x1111_2222_3333_4444UL, U64(m, 8)); // 64-bit FPU IP (REX.W form)
        Assert.Equal(0x5555_6666_7777_8888UL, U64(m, 16));
        Assert.Equal(0x1FA0u, U32(m, 24));                // MXCSR
        Assert.Equal(0xFFFFu, U32(m, 28));                // MXCSR_MASK
        // The register slots hold ST(0)..ST(7); FpuRegs is physical, and TOP = 7 (FSW 3800h), so ST(0) is physical 7
        // (bytes 70-79) and ST(1) physical 0 (bytes 0-9).
        Assert.Equal(0x4E4D_4C4B_4A49_4847UL, U64(m, 32)); // ST0 bytes 0-7
        Assert.Equal(0x504F, U16(m, 40));                 // ST0 bytes 8-9
        Assert.Equal(0x0807_0605_0403_0201UL, U64(m, 32 + 16)); // ST1 = physical 0
        Assert.Equal(0x4443_4241_403F_3E3DUL, U64(m, 32 + 7 * 16)); // ST7 = physical 6, bytes 60-67
        Assert.Equal(0x0101_0101_0101_0101UL, U64(m, 160)); // XMM0 low
        Assert.Equal(0x2020_2020_2020_2020UL, U64(m, 160 + 15 * 16 + 8)); // XMM15 high
        Assert.Equal(0xCC, m.Mem(Area + 464, 1)[0]);      // bytes 464-511 are software's
        Assert.Equal(0xCC, m.Mem(Area + 511, 1)[0]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fxsave_32bit_format_and_no_xmm8_outside_64bit_mode(int tier)
    {
        using var m = new SysMachine(tier, a => a.fxsave(__[ebx]), bitness: 32);
        m.Gpr(3) = Area;
        m.Mem(Area, 512).Fill(0xCC);
        Fill(m);
        m.RunToHlt();
        Assert.Equal(0x3333_4444u, U32(m, 8));  // FPU IP offset
        Assert.Equal(0x33, U16(m, 12));         // FCS
        Assert.Equal(0x7777_8888u, U32(m, 16)); // FPU DP offset
        Assert.Equal(0x2B, U16(m, 20));         // FDS
        Assert.Equal(0x1010_1010_1010_1010UL, U64(m, 160 + 7 * 16 + 8)); // XMM7 high = Xmm[15]
        Assert.Equal(0xCCCC_CCCC_CCCC_CCCCUL, U64(m, 288)); // XMM8 not stored
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fxsave_fxrstor_round_trip(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fxsave64(__[rbx]);
            a.fninit();
            a.pxor(xmm3, xmm3);
            a.pxor(xmm12, xmm12);
            a.fxrstor64(__[rbx]);
        });
        m.Gpr(3) = Area;
        Fill(m);
        var before = new byte[sizeof(ulong) * 32];
        m.RunToHlt();
        var s = m.S;
        Assert.Equal(0x027F, s->FpuControl);
        Assert.Equal(0x3800, s->FpuStatus);
        Assert.Equal(0x81, s->FpuTag);
        Assert.Equal(0x1111_2222_3333_4444UL, s->FpuIp);
        Assert.Equal(0x1FA0u, s->Mxcsr);
        for (int k = 0; k < 80; k++) Assert.Equal((byte)(k + 1), s->FpuRegs[k]);
        for (int k = 0; k < 32; k++) Assert.Equal(0x0101_0101_0101_0101UL * (ulong)(k + 1), s->Xmm[k]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fxrstor_mxcsr_reserved_bits_are_gp_and_change_nothing(int tier)
    {
        using var m = new SysMachine(tier, a => a.fxrstor64(__[rbx]));
        m.Gpr(3) = Area;
        m.Mem(Area, 512).Fill(0);
        BitConverter.TryWriteBytes(m.Mem(Area + 24, 4), 0x1_1F80u); // bit 16 reserved
        Fill(m);
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        Assert.Equal(0x027F, m.S->FpuControl);
        Assert.Equal(0x1FA0u, m.S->Mxcsr);
        Assert.Equal(0x0101_0101_0101_0101UL, m.S->Xmm[0]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fxsave_checks(int tier)
    {
        using var m = new SysMachine(tier, a => a.fxsave(__[rbx]));
        m.Gpr(3) = Area + 8; // misaligned
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        m.Reset();
        m.Gpr(3) = Area;
        m.S->Cr0 |= Cr0.TS;
        m.RunExpectFault(Vector.NM, SysMachine.CodeAddr);
        m.Reset();
        m.S->Cr0 |= Cr0.EM;
        m.RunExpectFault(Vector.UD, SysMachine.CodeAddr); // SDM FXSAVE: CR0.EM = 1 is #UD
        m.Reset();
        m.Ring3(); // not privileged
        m.RunToHlt();
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fninit_fnstsw_fnstcw_fldcw_fnclex(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fninit();
            a.fnstcw(__word_ptr[rbx]);
            a.fnstsw(ax);
            a.mov(__word_ptr[rbx + 2], 0x0F7F);
            a.fldcw(__word_ptr[rbx + 2]);
            a.fnstsw(__word_ptr[rbx + 4]);
            a.fnclex();
            a.fnstsw(__word_ptr[rbx + 6]);
            a.wait();
        });
        m.Gpr(3) = Area;
        m.Gpr(0) = 0xFFFF;
        m.S->FpuStatus = 0x0001; // IE set before FNINIT: cleared by it
        m.RunToHlt();
        Assert.Equal(0x037F, U16(m, 0));      // FNINIT control word
        Assert.Equal(0UL, m.Gpr(0) & 0xFFFF); // FNINIT status word
        Assert.Equal(0x0F7F, m.S->FpuControl);
        Assert.Equal(0, U16(m, 4));
        Assert.Equal(0, U16(m, 6));
        Assert.Equal(0, m.S->FpuTag);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Fldcw_unmasking_a_pending_exception_makes_fwait_raise_mf(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fldcw(__word_ptr[rbx]);
            a.wait();
        });
        m.Gpr(3) = Area;
        BitConverter.TryWriteBytes(m.Mem(Area, 2), (ushort)0x037E); // IE unmasked
        m.S->FpuStatus = 0x0001; // IE flag set
        m.RunExpectFault(Vector.MF, SysMachine.CodeAddr + 2); // FLDCW [rbx] (D9 2B) is 2 bytes
        Assert.Equal(0x8081, m.S->FpuStatus); // ES and B set (SDM Vol. 1 8.1.3.1)
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cr0_em_ts_mp_rules_for_x87(int tier)
    {
        using var m = new SysMachine(tier, a => a.fninit());
        m.S->Cr0 |= Cr0.EM;
        m.RunExpectFault(Vector.NM, SysMachine.CodeAddr);
        m.Reset();
        m.S->Cr0 |= Cr0.TS;
        m.RunExpectFault(Vector.NM, SysMachine.CodeAddr);

        using var w = new SysMachine(tier, a => a.wait());
        w.S->Cr0 |= Cr0.TS; // WAIT ignores TS unless MP is set (SDM Vol. 3A Table 2-1)
        w.RunToHlt();
        w.Reset();
        w.S->Cr0 |= Cr0.TS | Cr0.MP;
        w.RunExpectFault(Vector.NM, SysMachine.CodeAddr);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void X87_arithmetic_runs_after_the_nm_checks(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fld1();
            a.fld1();
            a.fadd(st0, st1);
            a.fstp(__qword_ptr[rbx]);
        });
        m.Gpr(3) = Area;
        m.S->FpuControl = 0x37F;
        m.S->FpuTag = 0;
        m.RunToHlt();
        Assert.Equal(BitConverter.DoubleToUInt64Bits(2.0), U64(m, 0));
        m.Reset();
        m.S->Cr0 |= Cr0.TS;
        m.RunExpectFault(Vector.NM, SysMachine.CodeAddr); // lazy FPU switching still sees #NM first
    }
}
