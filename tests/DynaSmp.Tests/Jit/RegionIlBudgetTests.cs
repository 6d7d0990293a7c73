using DynaSmp.Jit;
using DynaSmp.Jit.Translation;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>BlockTranslator.MaxRegionIlBytes: a region whose IL would put RyuJIT past its MinOpts limits is compiled as
/// the head's nearer members only, and computes what tier 0 computes.</summary>
public class RegionIlBudgetTests
{
    /// <summary>A loop over four blocks chained by JMP, each 60 memory adds (about 10 KB of IL a block).</summary>
    static void FourHeavyBlocks(Assembler a)
    {
        var blocks = new Label[4];
        for (int k = 0; k < 4; k++) blocks[k] = a.CreateLabel();
        var done = a.CreateLabel();
        a.xor(eax, eax);
        a.mov(ecx, 200);
        a.mov(ebx, 0x20000u); // zero-extends into RBX
        a.jmp(blocks[0]);     // so the loop head is a block of its own, the first of the four to run
        for (int k = 0; k < 4; k++)
        {
            a.Label(ref blocks[k]);
            for (int n = 0; n < 60; n++) a.add(eax, __dword_ptr[rbx + 4 * (n + 60 * k)]);
            if (k < 3) a.jmp(blocks[k + 1]);
        }
        a.dec(ecx);
        a.jnz(blocks[0]);
        a.Label(ref done);
        a.hlt();
    }

    static unsafe (ulong Eax, int HeadRegion) Run(int tier)
    {
        using var g = Guest.Flat64(tier, FourHeavyBlocks);
        for (int n = 0; n < 240; n++) BitConverter.TryWriteBytes(g.Ram.Span(0x20000 + 4 * (ulong)n, 4), (uint)(n * 2654435761u));
        g.RunToHlt();
        // The loop head follows the set-up: XOR EAX,EAX (2 bytes), MOV ECX,imm32 (5), MOV EBX,imm32 (5), JMP short (2).
        ulong head = 0x1000 + 2 + 5 + 5 + 2;
        var b = g.Cpu.Cache.Find(head, g.S->Mode, 0, head);
        return (g.Reg(R.Ax), b?.Compiled?.RegionBlocks ?? 0);
    }

    [Fact]
    public void A_region_past_the_IL_budget_is_compiled_in_part_and_computes_what_tier_zero_computes()
    {
        var t0 = Run(Tiers.Interpret);
        var t1 = Run(Tiers.Tiered); // synchronous tier-up at 50 runs: all four blocks are decoded by then
        Assert.Equal(t0.Eax, t1.Eax);
        Assert.InRange(t1.HeadRegion, 1, 3); // all four blocks were reachable; their IL is over the budget
    }
}
