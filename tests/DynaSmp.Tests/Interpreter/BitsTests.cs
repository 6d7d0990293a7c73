using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2A "BT", "BTS", "BTR", "BTC", "BSF", "BSR", "BSWAP", "ANDN", "BEXTR", "BLSI",
// "BLSMSK", "BLSR", "LZCNT", and Vol. 2B "POPCNT", "TZCNT".
public class BitsTests
{
    [Theory, InlineData(0), InlineData(1)]
    public void Bt_register_offsets_are_taken_modulo_the_width(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.bt(eax, 33); a.setc(r8b); a.btc(rbx, rcx); a.setc(r9b); }, h =>
        {
            h[0] = 2; h[3] = 0xF0; h[1] = 64 + 3;
        });
        h.AssertHalted();
        Assert.Equal(1UL, h[8]);      // bit 33 mod 32 = 1 of 2
        Assert.Equal(0UL, h[9]);      // bit 67 mod 64 = 3 of 0xF0 was clear
        Assert.Equal(0xF8UL, h[3]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Bt_with_register_offset_addresses_memory_outside_the_operand(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.bts(__dword_ptr[0x2010], ecx);   // -1: bit 31 of the dword at 0x200C
            a.setc(r8b);
            a.btr(__word_ptr[0x2010], dx);     // 17: bit 1 of the word at 0x2012
            a.setc(r9b);
            a.@lock.btc(__qword_ptr[0x2010], rsi); // 64: bit 0 of the qword at 0x2018
        }, h =>
        {
            h[1] = 0xFFFF_FFFF; h[2] = 17; h[6] = 64;
            h.Poke(0x2010, 0x0002_0000, 4); h.Poke(0x2018, 1, 8);
        });
        h.AssertHalted();
        Assert.Equal(0x8000_0000UL, h.Peek(0x200C, 4));
        Assert.Equal(0UL, h[8]);
        Assert.Equal(0UL, h.Peek(0x2010, 4));
        Assert.Equal(1UL, h[9]);
        Assert.Equal(0UL, h.Peek(0x2018, 8));
        Assert.Equal(F.CF, h.Status & F.CF); // BTC found bit 0 set
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Bsf_bsr_zero_source_sets_zf_and_keeps_the_destination(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.bsr(ecx, ebx); a.setz(r8b); a.bsf(rax, rdx); }, h =>
        {
            h[3] = 0xF0; h[0] = 0x1234_5678_9ABC_DEF0; h[2] = 0; h[1] = 99;
        });
        h.AssertHalted();
        Assert.Equal(7UL, h[1]);
        Assert.Equal(0UL, h[8]);
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, h[0]);
        Assert.Equal(F.ZF, h.Status & F.ZF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Popcnt_lzcnt_tzcnt(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.popcnt(rax, rbx);
            a.lzcnt(ecx, edx); a.setc(r8b); a.setz(r9b);
            a.tzcnt(si, di);
            a.lzcnt(r10d, r11d);
        }, h =>
        {
            h[3] = 0xFF00FF; h[2] = 0; h[7] = 8; h[11] = 0x8000_0000; h.Rflags = 2 | F.All;
        });
        h.AssertHalted();
        Assert.Equal(16UL, h[0]);
        Assert.Equal(32UL, h[1]);     // zero source: operand width, CF = 1
        Assert.Equal(1UL, h[8]);
        Assert.Equal(0UL, h[9]);
        Assert.Equal(3UL, h[6]);
        Assert.Equal(0UL, h[10]);     // MSB set: count 0, ZF = 1, CF = 0
        Assert.Equal(F.ZF, h.Status & (F.ZF | F.CF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Popcnt_clears_flags_and_sets_zf_for_zero(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.popcnt(eax, ebx), h => { h[0] = 5; h[3] = 0; h.Rflags = 2 | F.All; });
        h.AssertHalted();
        Assert.Equal(0UL, h[0]);
        Assert.Equal(F.ZF, h.Status);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Bswap_32_and_64(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.bswap(eax); a.bswap(rbx); }, h =>
        {
            h[0] = 0xFFFF_FFFF_1234_5678; h[3] = 0x0102_0304_0506_0708;
        });
        h.AssertHalted();
        Assert.Equal(0x7856_3412UL, h[0]);
        Assert.Equal(0x0807_0605_0403_0201UL, h[3]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Bmi1(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            a.andn(eax, ebx, ecx);
            a.bextr(edx, esi, edi);
            a.blsi(r8d, r9d); a.setc(r12b);
            a.blsmsk(r10, r9);
            a.blsr(r11d, r9d);
            a.blsr(r13, r14); // zero source: result 0, ZF = 1, CF = 1
        }, h =>
        {
            h[3] = 0xF0F0_F0F0; h[1] = 0xFFFF_0000;
            h[6] = 0x1234_5678; h[7] = 0x0804;
            h[9] = 0x58; h[14] = 0;
        });
        h.AssertHalted();
        Assert.Equal(0x0F0F_0000UL, h[0]);
        Assert.Equal(0x67UL, h[2]);
        Assert.Equal(0x08UL, h[8]);
        Assert.Equal(1UL, h[12]);
        Assert.Equal(0x0FUL, h[10]);
        Assert.Equal(0x50UL, h[11]);
        Assert.Equal(0UL, h[13]);
        Assert.Equal(F.ZF | F.CF, h.Status & (F.ZF | F.CF | F.OF | F.SF));
    }
}
