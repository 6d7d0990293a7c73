using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>Flushes write only the TLB and jump-cache slots filled since the last flush while few were (a fill log), and
/// every slot once many were: both ways must drop exactly what the SDM says a CR3 load, INVLPG or CR4.PGE change drops
/// (4.10.4.1), in both tiers.</summary>
public sealed unsafe class TlbFlushLogTests
{
    const ulong Data = 0x4000_0000;
    const int GlobalPages = 48;

    /// <summary>Sums the first qword of <paramref name="pages"/> consecutive pages at <see cref="Data"/> into RAX.</summary>
    static PagingGuest SumPages(int tier, int pages, out ulong pml4)
    {
        var g = new PagingGuest(tier, 64);
        g.Cpu.SetFlat64(0x1000, 0x8000);
        pml4 = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4, lin, lin, P | RW | US);
        g.Code(0x1000, 0x1000, a =>
        {
            var loop = a.CreateLabel();
            a.mov(rbx, Data); a.xor(eax, eax); a.mov(ecx, pages);
            a.Label(ref loop);
            a.add(rax, __qword_ptr[rbx]); a.add(rbx, 0x1000); a.dec(ecx); a.jnz(loop);
            a.hlt();
        });
        g.EnablePaging(pml4, Cr4Pae | Cr4Pge);
        return g;
    }

    /// <summary>Maps page k of the data area to <paramref name="physBase"/> + k pages holding <paramref name="value"/>; the
    /// first <see cref="GlobalPages"/> are global when <paramref name="global"/> is set.</summary>
    static void MapData(PagingGuest g, ulong root, int pages, ulong physBase, ulong value, bool global)
    {
        for (int k = 0; k < pages; k++)
        {
            ulong phys = physBase + (ulong)k * 0x1000;
            g.Map64(root, Data + (ulong)k * 0x1000, phys, P | RW | (global && k < GlobalPages ? G : 0));
            g.Write64(phys, value);
        }
    }

    static ulong Run(PagingGuest g)
    {
        g.S->Rip = 0x1000;
        g.AssertHlt();
        return g.Cpu.Gpr(0);
    }

    static void LoadCr3(PagingGuest g, ulong root)
    {
        ulong old = g.S->Cr3;
        g.S->Cr3 = root;
        g.Cpu.Mmu.OnControlRegisterWrite(3, old, root);
    }

    [Theory]
    [InlineData(0, 96)] // more slots than the log holds: flushes scan every slot
    [InlineData(1, 96)]
    [InlineData(0, 56)] // the log's globals and a few more
    [InlineData(1, 56)]
    public void A_cr3_load_keeps_global_entries_and_drops_the_rest(int tier, int pages)
    {
        using var g = SumPages(tier, pages, out ulong pml4);
        MapData(g, pml4, pages, 0x40_0000, 1, global: true);
        Assert.Equal((ulong)pages, Run(g));

        // Another address space maps every page elsewhere: globals keep their cached translation, the rest reload.
        ulong pml4b = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4b, lin, lin, P | RW | US);
        MapData(g, pml4b, pages, 0x80_0000, 100, global: false);
        LoadCr3(g, pml4b);
        Assert.Equal(GlobalPages * 1UL + (ulong)(pages - GlobalPages) * 100, Run(g));

        // And back: the entries filled under pml4b are dropped again (the log was rebuilt from the survivors).
        LoadCr3(g, pml4);
        Assert.Equal((ulong)pages, Run(g));

        // Clearing CR4.PGE drops the global entries too.
        LoadCr3(g, pml4b);
        ulong cr4 = g.S->Cr4;
        g.S->Cr4 = cr4 & ~Cr4Pge;
        g.Cpu.Mmu.OnControlRegisterWrite(4, cr4, g.S->Cr4);
        Assert.Equal((ulong)pages * 100, Run(g));
    }

    [Theory]
    [InlineData(0, 96)]
    [InlineData(1, 96)]
    [InlineData(0, 8)]
    [InlineData(1, 8)]
    public void Invlpg_drops_the_page_with_a_short_or_an_overflowed_log(int tier, int pages)
    {
        using var g = SumPages(tier, pages, out ulong pml4);
        MapData(g, pml4, pages, 0x40_0000, 1, global: false);
        Assert.Equal((ulong)pages, Run(g));
        ulong lin = Data + (ulong)(pages - 3) * 0x1000;
        g.Map64(pml4, lin, 0x90_0000, P | RW);
        g.Write64(0x90_0000, 7);
        Assert.Equal((ulong)pages, Run(g)); // still cached
        g.Cpu.Mmu.FlushPage(lin);
        Assert.Equal((ulong)pages + 6, Run(g));
    }

    static Block At(ulong rip) => Jit.JumpCacheTests.At(rip);

    [Theory]
    [InlineData(3)]
    [InlineData(200)]   // past the fill log
    [InlineData(1000)]  // past the first growth
    public void A_jump_cache_flush_drops_every_filled_slot(int fills)
    {
        var cache = new JumpCache();
        var blocks = new List<Block>();
        for (int k = 0; k < fills; k++)
        {
            var b = At(0x10_0000 + (ulong)k * 16);
            blocks.Add(b);
            cache.Fill(b.Rip, b, b.Rip, 0xFFF, global: true);
        }
        Assert.Same(blocks[^1], cache.Probe(blocks[^1].Rip, ExecMode.Code64, 0));
        cache.Flush();
        foreach (var b in blocks) Assert.Null(cache.Probe(b.Rip, ExecMode.Code64, 0));
        // Refilled after a flush, a few slots flush again through the log.
        cache.Fill(blocks[0].Rip, blocks[0], blocks[0].Rip, 0xFFF, global: false);
        cache.Fill(blocks[^1].Rip, blocks[^1], blocks[^1].Rip, 0x1F_FFFF, global: true);
        cache.Flush();
        Assert.Null(cache.Probe(blocks[0].Rip, ExecMode.Code64, 0));
        Assert.Null(cache.Probe(blocks[^1].Rip, ExecMode.Code64, 0));
    }
}
