using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR", "SHLD", "SHRD".
public class ShiftTests
{
    const ulong AllSet = 0x8D5 | 2; // CF PF AF ZF SF OF

    [Theory, InlineData(0), InlineData(1)]
    public void Count_zero_changes_no_flag_but_zero_extends_a_32_bit_register(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.shl(eax, cl); a.rol(ebx, 32); }, h =>
        {
            h[0] = 0xFFFF_FFFF_8000_0001; h[1] = 0x100; h[3] = 0x1_0000_0002; h.Rflags = AllSet;
        });
        h.AssertHalted();
        Assert.Equal(0x8000_0001UL, h[0]);
        Assert.Equal(2UL, h[3]);
        Assert.Equal(F.All, h.Status);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Shl_by_one_sets_cf_and_of(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.shl(al, 1), h => h[0] = 0xC0);
        h.AssertHalted();
        Assert.Equal(0x80UL, h[0]);
        // CF = old bit 7 = 1; OF = MSB(result) XOR CF = 0; SF = 1; PF: 0x80 has one bit set.
        Assert.Equal(F.CF | F.SF, h.Status & (F.CF | F.OF | F.SF | F.ZF | F.PF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Counts_are_masked_to_5_bits_or_6_for_64_bit(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.shl(ebx, 33); a.shr(rax, 65); }, h =>
        {
            h[3] = 0x4000_0000; h[0] = 0x8000_0000_0000_0003;
        });
        h.AssertHalted();
        Assert.Equal(0x8000_0000UL, h[3]);
        Assert.Equal(0x4000_0000_0000_0001UL, h[0]);
        // Last: SHR by 1: CF = old bit 0 = 1, OF = MSB(original) = 1, SF = 0, ZF = 0, PF: 0x01 is odd.
        Assert.Equal(F.CF | F.OF, h.Status & (F.CF | F.OF | F.SF | F.ZF | F.PF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Sar_fills_with_the_sign_and_clears_of(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.sar(bl, 3), h => { h[3] = 0x85; h.Rflags = AllSet; });
        h.AssertHalted();
        Assert.Equal(0xF0UL, h[3]);
        // 0x85 >> 3: CF = bit 2 = 1, SF = 1, PF (0xF0, four bits) = 1, ZF = 0, OF = 0.
        Assert.Equal(F.CF | F.SF | F.PF, h.Status & (F.CF | F.OF | F.SF | F.ZF | F.PF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Shl_of_a_byte_by_its_width_or_more_gives_zero(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.shl(al, 8); a.shl(bl, cl); }, h => { h[0] = 0xFF; h[3] = 0xFF; h[1] = 20; });
        h.AssertHalted();
        Assert.Equal(0UL, h[0]);
        Assert.Equal(0UL, h[3]);
        Assert.Equal(F.ZF | F.PF, h.Status & (F.ZF | F.PF | F.SF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rotates_change_only_cf_and_of(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.rol(dx, 4); a.ror(al, 1); }, h =>
        {
            h[2] = 0x1234; h[0] = 0x01; h.Rflags = 2 | F.ZF | F.SF | F.PF;
        });
        h.AssertHalted();
        Assert.Equal(0x2341UL, h[2]);
        Assert.Equal(0x80UL, h[0]);
        // ROR by 1: CF = MSB(result) = 1; OF = MSB XOR MSB-1 = 1. ZF/SF/PF untouched.
        Assert.Equal(F.CF | F.OF | F.ZF | F.SF | F.PF, h.Status & ~F.AF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rol_by_a_multiple_of_the_width_sets_cf_from_the_lsb(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.rol(al, 8), h => { h[0] = 0x81; h.Rflags = 2; });
        h.AssertHalted();
        Assert.Equal(0x81UL, h[0]);
        Assert.Equal(F.CF, h.Status & F.CF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rcl_and_rcr_rotate_through_cf_with_8_and_16_bit_counts_modulo_9_and_17(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.stc();
            a.rcl(al, 9);   // 9 mod 9 = 0: no change, CF stays 1
            a.rcl(bl, 1);   // 0x80 -> 0x01 (old CF in), CF = 1, OF = 0 XOR 1 = 1
            a.rcr(cx, 17);  // 17 mod 17 = 0: no change
            a.rcr(dl, 2);   // CF=1, 0x03 -> 0x81 (CF=1) -> 0xC0 (CF=1)
        }, h => { h[0] = 0x55; h[3] = 0x80; h[1] = 0x1234; h[2] = 0x03; });
        h.AssertHalted();
        Assert.Equal(0x55UL, h[0]);
        Assert.Equal(0x01UL, h[3]);
        Assert.Equal(0x1234UL, h[1]);
        Assert.Equal(0xC0UL, h[2]);
        Assert.Equal(F.CF, h.Status & F.CF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rcr_by_one_sets_of_from_msb_xor_cf_before(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.clc(); a.rcr(eax, 1); }, h => h[0] = 0x8000_0001);
        h.AssertHalted();
        Assert.Equal(0x4000_0000UL, h[0]);
        Assert.Equal(F.CF | F.OF, h.Status & (F.CF | F.OF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Shld_and_shrd(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.shld(eax, ebx, 8); a.shrd(rsi, rdi, cl); }, h =>
        {
            h[0] = 0x1234_5678; h[3] = 0x9ABC_DEF0;
            h[6] = 0x0123_4567_89AB_CDEF; h[7] = 5; h[1] = 4;
        });
        h.AssertHalted();
        Assert.Equal(0x3456_789AUL, h[0]);
        Assert.Equal(0x5012_3456_789A_BCDEUL, h[6]);
        // SHRD by 4: CF = bit 3 of the destination = 1; SF = 0; ZF = 0; PF: 0xDE has six bits.
        Assert.Equal(F.CF | F.PF, h.Status & (F.CF | F.SF | F.ZF | F.PF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Shld_flags_for_count_one_and_memory_destination(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.shld(__word_ptr[0x2000], bx, 1), h =>
        {
            h.Poke(0x2000, 0x4001, 2); h[3] = 0x8000;
        });
        h.AssertHalted();
        // 0x4001:0x8000 << 1 = 0x8003; CF = old bit 15 = 0; OF = sign change = 1; SF = 1.
        Assert.Equal(0x8003UL, h.Peek(0x2000, 2));
        Assert.Equal(F.OF | F.SF, h.Status & (F.CF | F.OF | F.SF | F.ZF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Shift_of_memory_operand(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => a.shr(__dword_ptr[0x2000], 4), h => h.Poke(0x2000, 0x8000_0018, 4));
        h.AssertHalted();
        Assert.Equal(0x0800_0001UL, h.Peek(0x2000, 4));
        Assert.Equal(F.CF, h.Status & (F.CF | F.ZF | F.SF));
    }
}
