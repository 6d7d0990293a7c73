using DynaSmp.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2A "MUL", "IMUL", "DIV", "IDIV".
public class MulDivTests
{
    const ulong CfOf = F.CF | F.OF;

    [Theory, InlineData(0), InlineData(1)]
    public void Mul_widens_and_sets_cf_of_when_the_high_half_is_used(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.mul(bl); a.mov(r8, rax); a.mov(r9d, 0x10); a.mov(rax, r10); a.mul(r9d); a.mov(r11, rax); a.mov(r12, rdx); a.mov(rax, r13); a.mul(r14); }, h =>
        {
            h[0] = 0x80; h[3] = 2;
            h[10] = 0xFFFF_FFFF_0000_0010; h[2] = 0x5555;
            h[13] = ulong.MaxValue; h[14] = 2;
        });
        h.AssertHalted();
        Assert.Equal(0x100UL, h[8]);                     // AL*BL = 0x100 in AX
        Assert.Equal(0x100UL, h[11]);                    // EDX:EAX = 0x100, RAX upper half cleared
        Assert.Equal(0UL, h[12]);                        // EDX = 0, RDX upper half cleared
        Assert.Equal(0xFFFF_FFFF_FFFF_FFFEUL, h[0]);     // 2^64-1 times 2
        Assert.Equal(1UL, h[2]);
        Assert.Equal(CfOf, h.Status & CfOf);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Mul_without_high_half_clears_cf_of(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => a.mul(cx), h => { h[0] = 0x1234; h[1] = 3; h[2] = 0xFFFF; h.Rflags = 2 | CfOf; });
        h.AssertHalted();
        Assert.Equal(0x369CUL, h[0]);
        Assert.Equal(0UL, h[2]);
        Assert.Equal(0UL, h.Status & CfOf);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Imul_one_operand_is_signed(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.imul(cl); a.mov(r8, rax); a.mov(al, 0xFE); a.imul(dl); a.mov(r9, rax); a.mov(rax, r10); a.imul(r11); }, h =>
        {
            h[0] = 0xFE; h[1] = 0x40; h[2] = 0x41; h[10] = unchecked((ulong)-3L); h[11] = 5;
        });
        h.AssertHalted();
        Assert.Equal(0xFF80UL, h[8] & 0xFFFF);           // -2 * 64 = -128 fits in AL
        Assert.Equal(0xFF7EUL, h[9] & 0xFFFF);           // -2 * 65 = -130 does not
        Assert.Equal(unchecked((ulong)-15L), h[0]);
        Assert.Equal(ulong.MaxValue, h[2]);              // RDX:RAX = -15
        Assert.Equal(0UL, h.Status & CfOf);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Imul_one_operand_byte_overflow_sets_cf_of(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.imul(dl), h => { h[0] = 0xFE; h[2] = 0x41; });
        h.AssertHalted();
        Assert.Equal(0xFF7EUL, h[0]);
        Assert.Equal(CfOf, h.Status & CfOf);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Imul_two_and_three_operands_truncate(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.imul(eax, ebx, 0x10000);   // 2^32 truncated to 0: overflow
            a.imul(cx, dx);              // 0x100 * 0x100 truncated: overflow
            a.imul(rsi, rdi);            // 2^62 * 2 = 2^63: signed overflow
            a.setc(r8b);
            a.imul(r9, r10, -3);         // 7 * -3 = -21: fits
        }, h =>
        {
            h[0] = 0xFFFF_FFFF_FFFF_FFFF; h[3] = 0x10000; h[1] = 0xAAAA_0100; h[2] = 0x100;
            h[6] = 0x4000_0000_0000_0000; h[7] = 2; h[10] = 7;
        });
        h.AssertHalted();
        Assert.Equal(0UL, h[0]);
        Assert.Equal(0xAAAA_0000UL, h[1]);
        Assert.Equal(0x8000_0000_0000_0000UL, h[6]);
        Assert.Equal(1UL, h[8]);
        Assert.Equal(unchecked((ulong)-21L), h[9]);
        Assert.Equal(0UL, h.Status & CfOf);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Div_unsigned_all_sizes(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.div(cl); a.mov(r8, rax);                 // 0x100 / 2
            a.mov(rax, r10); a.mov(rdx, r11); a.div(r12); // (1:0) / 2 = 2^63
            a.mov(r9, rdx); a.mov(r13, rax);
            a.mov(eax, 100); a.xor(edx, edx); a.mov(ecx, 7); a.div(ecx);
        }, h =>
        {
            h[0] = 0x100; h[1] = 2; h[10] = 0; h[11] = 1; h[12] = 2;
        });
        h.AssertHalted();
        Assert.Equal(0x0080UL, h[8]);
        Assert.Equal(0x8000_0000_0000_0000UL, h[13]);
        Assert.Equal(0UL, h[9]);
        Assert.Equal(14UL, h[0]);
        Assert.Equal(2UL, h[2]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Idiv_truncates_toward_zero(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.idiv(cl); a.mov(r8, rax);
            a.mov(rax, r10); a.mov(rdx, r11); a.idiv(r12);
        }, h =>
        {
            h[0] = 0xFFF9; h[1] = 2;                   // -7 / 2 = -3 rem -1
            h[10] = 0; h[11] = ulong.MaxValue; h[12] = unchecked((ulong)-4L); // -2^64 / -4 = 2^62
        });
        h.AssertHalted();
        Assert.Equal(0xFFFDUL, h[8]);
        Assert.Equal(0x4000_0000_0000_0000UL, h[0]);
        Assert.Equal(0UL, h[2]);
    }

    /// <summary>Unsigned DIV at the edge of #DE: the high half one below the divisor, so the quotient takes every bit of
    /// the operand; for DIV r32 the registers' upper halves hold garbage, which DIV r32 ignores (and clears in RAX/RDX).</summary>
    [Theory, InlineData(0, 4), InlineData(1, 4), InlineData(0, 8), InlineData(1, 8)]
    public void Unsigned_divide_with_the_largest_quotient_that_fits(int tier, int size)
    {
        ulong divisor = size == 4 ? 0xDEAD_0000_9ABC_DEF1 : 0x9ABC_DEF0_1234_5679, low = 0xBEEF_0000_FFFF_FFF0;
        ulong mask = size == 4 ? 0xFFFF_FFFF : ulong.MaxValue;
        ulong high = ((divisor & mask) - 1) | (size == 4 ? 0x1234_5678_0000_0000UL : 0UL);
        using var h = GroupTestHost.Run(tier, 64, a => { if (size == 4) a.div(ecx); else a.div(rcx); },
            h => { h[0] = low; h[2] = high; h[1] = divisor; });
        h.AssertHalted();
        UInt128 dividend = ((UInt128)(high & mask) << (size * 8)) | (low & mask);
        Assert.Equal((ulong)(dividend / (divisor & mask)), h[0]);
        Assert.Equal((ulong)(dividend % (divisor & mask)), h[2]);
        Assert.Equal(mask, h[0] | (mask >> 1)); // the quotient's top bit is set: it needs the whole operand
    }

    public static TheoryData<int, int, string> DivideErrors => new()
    {
        // tier, case, description
        { 0, 0, "div by zero" }, { 1, 0, "div by zero" },
        { 0, 1, "div r8 quotient > 0xFF" }, { 1, 1, "div r8 quotient > 0xFF" },
        { 0, 2, "div r64 RDX >= divisor" }, { 1, 2, "div r64 RDX >= divisor" },
        { 0, 3, "idiv r32 -2^31 / -1" }, { 1, 3, "idiv r32 -2^31 / -1" },
        { 0, 4, "idiv r64 -2^63 / -1" }, { 1, 4, "idiv r64 -2^63 / -1" },
        { 0, 5, "idiv r64 Int128.MinValue / -1" }, { 1, 5, "idiv r64 Int128.MinValue / -1" },
        { 0, 6, "idiv r8 quotient 128" }, { 1, 6, "idiv r8 quotient 128" },
        { 0, 7, "div r32 EDX >= divisor" }, { 1, 7, "div r32 EDX >= divisor" },
        { 0, 8, "div r32 by zero, RCX's upper half set" }, { 1, 8, "div r32 by zero, RCX's upper half set" },
        { 0, 9, "div r64 by zero" }, { 1, 9, "div r64 by zero" },
    };

    [Theory, MemberData(nameof(DivideErrors))]
    public void Divide_error_raises_de_and_changes_nothing(int tier, int which, string what)
    {
        _ = what;
        ulong xa = 0, xd = 0, xc = 0;
        switch (which)
        {
            case 0: xa = 5; xd = 0; xc = 0; break;
            case 1: xa = 0x200; xc = 2; break;
            case 2: xa = 0; xd = 2; xc = 2; break;
            case 3: xa = 0x8000_0000; xd = 0xFFFF_FFFF; xc = 0xFFFF_FFFF; break;
            case 4: xa = 0x8000_0000_0000_0000; xd = ulong.MaxValue; xc = ulong.MaxValue; break;
            case 5: xa = 0; xd = 0x8000_0000_0000_0000; xc = ulong.MaxValue; break;
            case 6: xa = 0xFF00; xc = 0xFE; break; // -256 / -2 = 128
            case 7: xa = 0xFFFF_FFFF; xd = 0xFFFF_FFFF_0000_0007; xc = 7; break; // EDX = 7 = divisor: the quotient needs 33 bits
            case 8: xa = 5; xd = 0; xc = 0x1_0000_0000; break; // ECX = 0, whatever RCX holds above it
            case 9: xa = 5; xd = 0; xc = 0; break;
        }
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.nop();
            switch (which)
            {
                case 0: a.div(rcx); break;
                case 1: a.div(cl); break;
                case 2: a.div(rcx); break;
                case 3: a.idiv(ecx); break;
                case 4: case 5: a.idiv(rcx); break;
                case 7: case 8: a.div(ecx); break;
                case 9: a.div(rcx); break;
                default: a.idiv(cl); break;
            }
        }, h => { h[0] = xa; h[2] = xd; h[1] = xc; }, warmup: h => h[1] = 1);
        h.AssertFault(Vector.DE, GroupTestHost.Code + 1);
        Assert.Equal(xa, h[0]);
        Assert.Equal(xd, h[2]);
    }
}
