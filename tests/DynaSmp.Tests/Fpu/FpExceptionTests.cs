using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.SystemInsns;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Fpu;

/// <summary>Unmasked floating-point exceptions, which the differential groups cannot run natively (they would be a
/// real SIGFPE in the test process): x87 delayed #MF / FERR (SDM Vol. 1 8.6, Vol. 3A 2.5 CR0.NE) and SSE #XM / #UD
/// (SDM Vol. 1 11.5.1, CR4.OSXMMEXCPT).</summary>
public unsafe class FpExceptionTests
{
    const ulong Area = SysMachine.DataAddr;

    [Theory, InlineData(0), InlineData(1)]
    public void Unmasked_x87_zero_divide_is_reported_at_the_next_waiting_instruction(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fld1();
            a.fldz();
            a.fdivp(st1, st0); // 1/0 with ZE unmasked: ES set, ST(1) unchanged, no pop
            a.fnstsw(ax);      // non-waiting: no fault
            a.wait();         // #MF here
        });
        m.S->FpuControl = 0x037B; // ZM clear
        m.S->FpuTag = 0;
        m.S->Cr0 |= Cr0.NE;
        m.RunExpectFault(Vector.MF, m.HltAddr - 1); // WAIT (9Bh) just before the HLT
        ushort fsw = (ushort)m.Gpr(0);
        Assert.Equal(0x84, fsw & 0xFF); // ES | ZE
        Assert.Equal(6, (fsw >> 11) & 7); // two pushes, no pop
    }

    [Theory, InlineData(0), InlineData(1)]
    public void With_cr0_ne_clear_an_unmasked_x87_exception_only_records_ferr(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.fld1();
            a.fldz();
            a.fdivp(st1, st0);
            a.wait();
        });
        m.S->FpuControl = 0x037B;
        m.S->FpuTag = 0;
        m.S->Cr0 &= ~Cr0.NE;
        m.RunToHlt();
        Assert.Equal(0x8084, m.S->FpuStatus & 0x80FF); // B, ES, ZE: the FERR# condition
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Masked_x87_stack_overflow_pushes_the_indefinite_with_c1_set(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            for (int k = 0; k < 9; k++) a.fld1();
            a.fstp(__tword_ptr[rbx]);
        });
        m.Gpr(3) = Area;
        m.S->FpuControl = 0x037F;
        m.S->FpuTag = 0;
        m.RunToHlt();
        Assert.Equal(0x41, m.S->FpuStatus & 0x41);   // IE | SF
        Assert.Equal(0xC000_0000_0000_0000UL, BitConverter.ToUInt64(m.Mem(Area, 8)));
        Assert.Equal(0xFFFF, BitConverter.ToUInt16(m.Mem(Area + 8, 2)));
    }

    [Theory, InlineData(0, true), InlineData(1, true), InlineData(0, false), InlineData(1, false)]
    public void Unmasked_sse_exception_is_xm_or_ud_and_writes_nothing(int tier, bool osxmmexcpt)
    {
        using var m = new SysMachine(tier, a => a.divss(xmm0, xmm1));
        m.S->Cr4 |= 1 << 9;
        if (osxmmexcpt) m.S->Cr4 |= 1 << 10; else m.S->Cr4 &= ~(1UL << 10);
        m.S->Mxcsr = 0x1F80 & ~(1u << 9); // ZE unmasked
        m.S->Xmm[0] = BitConverter.SingleToUInt32Bits(1f);
        m.S->Xmm[2] = 0; // xmm1 = 0
        m.RunExpectFault(osxmmexcpt ? Vector.XM : Vector.UD, SysMachine.CodeAddr);
        Assert.Equal((ulong)BitConverter.SingleToUInt32Bits(1f), m.S->Xmm[0]);
        Assert.Equal(0x4u, m.S->Mxcsr & 0x3F); // ZE recorded
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Ldmxcsr_reserved_bits_are_gp(int tier)
    {
        using var m = new SysMachine(tier, a => a.ldmxcsr(__dword_ptr[rbx]));
        m.Gpr(3) = Area;
        m.S->Cr4 |= 1 << 9;
        BitConverter.TryWriteBytes(m.Mem(Area, 4), 0x1_1F80u);
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
    }
}
