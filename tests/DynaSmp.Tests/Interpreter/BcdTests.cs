using DynaSmp.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2A "DAA", "DAS", "AAA", "AAS", "AAM", "AAD", "ENTER", "XLAT/XLATB".
public class BcdTests
{
    [Theory, InlineData(0), InlineData(1)]
    public void Daa_after_add(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => { a.add(al, 0x35); a.daa(); }, h => h[0] = 0x79);
        h.AssertHalted();
        Assert.Equal(0x14UL, h[0] & 0xFF); // 79 + 35 = 114
        Assert.Equal(F.CF | F.AF | F.PF, h.Status & (F.CF | F.AF | F.PF | F.ZF | F.SF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Das_after_sub(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => { a.sub(al, 0x47); a.das(); }, h => h[0] = 0x35);
        h.AssertHalted();
        Assert.Equal(0x88UL, h[0] & 0xFF); // 35 - 47 = -12: 88 with a borrow
        Assert.Equal(F.CF | F.AF | F.SF | F.PF, h.Status & (F.CF | F.AF | F.PF | F.ZF | F.SF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Aaa_and_aas(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a =>
        {
            a.add(al, 8); a.aaa(); a.mov(esi, eax);
            a.mov(ax, 0x0103); a.sub(al, 5); a.aas();
        }, h => h[0] = 0x0009);
        h.AssertHalted();
        Assert.Equal(0x0107UL, h[6] & 0xFFFF); // 9 + 8 = 17
        Assert.Equal(0x0008UL, h[0] & 0xFFFF); // 13 - 5 = 8
        Assert.Equal(F.CF | F.AF, h.Status & (F.CF | F.AF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Aam_and_aad(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => { a.aam(10); a.mov(esi, eax); a.mov(ax, 0x0607); a.aad(10); }, h => h[0] = 63);
        h.AssertHalted();
        Assert.Equal(0x0603UL, h[6] & 0xFFFF);
        Assert.Equal(0x0043UL, h[0] & 0xFFFF); // 67; PF: 0x43 has three bits
        Assert.Equal(0UL, h.Status & (F.PF | F.ZF | F.SF));
    }

    // Always faults, so the block never tiers up: tier 0 only.
    [Theory, InlineData(0)]
    public void Aam_zero_raises_de(int tier)
    {
        using var h = GroupTestHost.RunBytes(tier, 32, [0xD4, 0x00, 0xEB, 0x00, 0xF4], h => h[0] = 0x1234);
        h.AssertFault(Vector.DE, GroupTestHost.Code);
        Assert.Equal(0x1234UL, h[0]);
    }

    // Always faults, so the block never tiers up: tier 0 only.
    [Theory, InlineData(0)]
    public void Bcd_is_invalid_in_64_bit_mode(int tier)
    {
        using var h = GroupTestHost.RunBytes(tier, 64, [0x27, 0xF4], _ => { });
        h.AssertFault(Vector.UD, GroupTestHost.Code);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Enter_level_0_and_64_bit(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.enter(0x20, 0), h => h[5] = 0x1122_3344_5566_7788);
        h.AssertHalted();
        Assert.Equal(0x7FF8UL, h[5]);
        Assert.Equal(0x7FD8UL, h[4]);
        Assert.Equal(0x1122_3344_5566_7788UL, h.Peek(0x7FF8, 8));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Enter_nested_copies_outer_frame_pointers(int tier)
    {
        using var h = GroupTestHost.Run(tier, 32, a => a.enter(8, 3), h =>
        {
            h[5] = 0x7000; h.Poke(0x6FFC, 0xAAAA, 4); h.Poke(0x6FF8, 0xBBBB, 4);
        });
        h.AssertHalted();
        Assert.Equal(0x7000UL, h.Peek(0x7FFC, 4));  // old EBP
        Assert.Equal(0xAAAAUL, h.Peek(0x7FF8, 4));  // display entries copied from [EBP-4], [EBP-8]
        Assert.Equal(0xBBBBUL, h.Peek(0x7FF4, 4));
        Assert.Equal(0x7FFCUL, h.Peek(0x7FF0, 4));  // the new frame pointer
        Assert.Equal(0x7FFCUL, h[5]);
        Assert.Equal(0x7FE8UL, h[4]);
    }

    [Theory, InlineData(0, 32), InlineData(1, 32), InlineData(0, 64), InlineData(1, 64)]
    public void Xlat_reads_the_table_at_bx_plus_al(int tier, int bitness)
    {
        using var h = GroupTestHost.Run(tier, bitness, a => a.xlatb(), h => { h[3] = 0x2000; h[0] = 0xFFFF_FF05; h.Poke(0x2005, 0x77, 1); });
        h.AssertHalted();
        Assert.Equal(0xFFFF_FF77UL, h[0]);
    }
}
