using static DynaSmp.Tests.Paging.PagingGuest;

namespace DynaSmp.Tests.Paging;

/// <summary>A block whose last instruction runs into the next page depends on both pages' mappings. Remapping only the
/// second page (and invalidating it, as INVLPG does) must run the bytes the new mapping shows, in both tiers: the block
/// cache finds blocks by their first page, so its hit must be checked against the second.</summary>
public sealed unsafe class PageCrossingBlockTests
{
    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(0, true)]
    [InlineData(1, true)]  // compiled code jumping to it within the first page may be chained to it
    public void Remapping_the_second_page_of_a_straddling_instruction_runs_the_new_bytes(int tier, bool jumpedTo)
    {
        var (g, pml4) = LongMode(tier, a => a.hlt());
        using var _ = g;
        const ulong Lin = 0x20000, First = 0x80_0000, OldSecond = 0x80_1000, NewSecond = 0x80_2000;
        // mov eax, imm32 at 0x20FFD: B8 and two immediate bytes on the first page, two more and a HLT on the second.
        g.Ram.Write(First + 0xFFD, [0xB8, 0x11, 0x11]);
        g.Ram.Write(OldSecond, [0x11, 0x11, 0xF4]);
        g.Ram.Write(NewSecond, [0x11, 0x22, 0xF4]);
        g.Ram.Write(First + 0xF00, [0x90, 0xE9, 0xF7, 0x00, 0x00, 0x00]); // 0x20F00: nop; jmp 0x20FFD (rel32 0xF7 from 0x20F06)
        ulong start = jumpedTo ? Lin + 0xF00 : Lin + 0xFFD;
        g.Map64(pml4, Lin, First, P | RW | US);
        ulong pte = g.Map64(pml4, Lin + 0x1000, OldSecond, P | RW | US);
        for (int run = 0; run < 3; run++)
        {
            g.S->Rip = start;
            var r = g.Run();
            Assert.True(r == DynaSmp.Jit.Cpu.ExitReason.Hlt, $"run {run}: {r} {g.Cpu.ExitMessage} cr2 {g.S->Cr2:x} rax {g.S->Gpr[0]:x}");
            Assert.Equal(0x1111_1111UL, g.S->Gpr[0]);
        }
        g.Write64(pte, NewSecond | P | RW | US);
        g.Cpu.Mmu.FlushPage(Lin + 0x1000); // the guest's INVLPG of the second page
        g.S->Rip = start;
        g.AssertHlt();
        Assert.Equal(0x2211_1111UL, g.S->Gpr[0]);
    }
}
