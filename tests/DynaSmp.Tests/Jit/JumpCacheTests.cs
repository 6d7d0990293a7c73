using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Jit;

/// <summary>The per-vCPU jump cache: a hit needs the same RIP, mode and CS base and a valid block; it starts small and
/// grows in steps, each after twice its size in fills, so a vCPU that runs a few dozen blocks never pays for the full
/// table; a guest TLB flush drops only the entries it invalidates (SDM 4.10.4.1).</summary>
public sealed class JumpCacheTests
{
    /// <summary>A one-NOP block at <paramref name="rip"/> (its physical address too), for jump-cache tests.</summary>
    internal static Block At(ulong rip, ExecMode mode = ExecMode.Code64, ulong csBase = 0, bool crossesPage = false) =>
        new(rip, csBase, rip, mode, [Instruction.Create(Code.Nopd)], rip & ~0xFFFUL, crossesPage ? (rip & ~0xFFFUL) + 0x1000 : ulong.MaxValue);

    const ulong Small = 0xFFF, Large = 0x1F_FFFF;

    static void Fill(JumpCache c, Block b, ulong span = Small, bool global = false) => c.Fill(b.Rip, b, b.Rip + b.CsBase, span, global);

    [Fact]
    public void A_hit_needs_the_same_rip_mode_and_code_segment_and_a_valid_block()
    {
        var cache = new JumpCache();
        var b = At(0x1000);
        Fill(cache, b);
        Assert.Same(b, cache.Probe(0x1000, ExecMode.Code64, 0));
        Assert.Null(cache.Probe(0x1000, ExecMode.Code32, 0));
        Assert.Null(cache.Probe(0x1000, ExecMode.Code64, 0x10));
        Assert.Null(cache.Probe(0x1000 + (ulong)JumpCache.InitialEntries * 0x1001, ExecMode.Code64, 0)); // another RIP, maybe the same slot
        b.Invalid = true;
        Assert.Null(cache.Probe(0x1000, ExecMode.Code64, 0));
        var c = At(0x2000);
        Fill(cache, c);
        cache.Flush();
        Assert.Null(cache.Probe(0x2000, ExecMode.Code64, 0));
    }

    [Fact]
    public void It_grows_in_steps_when_entries_keep_evicting_each_other_up_to_MaxEntries()
    {
        var cache = new JumpCache();
        // An AP in an INIT/SIPI storm: the same few blocks, flushed and filled again over and over, never grow it.
        for (int round = 0; round < 100; round++)
        {
            for (ulong k = 0; k < 40; k++) Fill(cache, At(0x10_0000 + k * 16));
            cache.Flush();
        }
        Assert.Equal(JumpCache.InitialEntries, cache.Capacity);
        // Two blocks per slot, taking turns: more evictions than slots.
        for (int round = 0; round < 2; round++)
            for (ulong k = 0; k < 2 * JumpCache.InitialEntries; k++) Fill(cache, At(0x10_0000 + k * 0x10_0100));
        Assert.True(cache.Capacity > JumpCache.InitialEntries);
        var last = At(0x40_0000);
        Fill(cache, last);
        Assert.Same(last, cache.Probe(0x40_0000, ExecMode.Code64, 0));
        for (ulong k = 0; k < 16 * JumpCache.MaxEntries; k++) Fill(cache, At(k * 16));
        Assert.Equal(JumpCache.MaxEntries, cache.Capacity);
    }

    [Theory]
    [InlineData(3)]     // through the fill log
    [InlineData(5000)]  // past it: the whole array is visited
    public void A_CR3_load_keeps_the_entries_found_through_global_mappings(int fills)
    {
        var cache = new JumpCache();
        var blocks = new List<(Block Block, bool Global)>();
        for (int k = 0; k < fills; k++)
        {
            var b = At(0x100_0000 + (ulong)k * 0x40);
            blocks.Add((b, k % 2 == 0));
            Fill(cache, b, global: k % 2 == 0);
        }
        // Growing empties the table and later fills may share a slot: look only at the entries there now.
        var present = blocks.Where(x => cache.Probe(x.Block.Rip, ExecMode.Code64, 0) != null).ToList();
        Assert.Contains(present, x => x.Global);
        Assert.Contains(present, x => !x.Global);
        cache.FlushNonGlobal();
        foreach (var (b, global) in present)
            if (global) Assert.Same(b, cache.Probe(b.Rip, ExecMode.Code64, 0));
            else Assert.Null(cache.Probe(b.Rip, ExecMode.Code64, 0));
        cache.Flush(); // a full flush (CR4.PGE, CR0.PG) takes the global ones too
        foreach (var (b, _) in present) Assert.Null(cache.Probe(b.Rip, ExecMode.Code64, 0));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]  // past the fill log
    public void An_INVLPG_drops_the_entries_its_page_maps_global_or_not(bool many)
    {
        var cache = new JumpCache();
        if (many) for (ulong k = 0; k < 200; k++) Fill(cache, At(0x7000_0000 + k * 0x1000));
        var inPage = At(0x20_3010);                       // 4 KiB page 0x203000, global
        var nextPage = At(0x20_4010);                     // the page after it
        var inLarge = At(0x40_0100);                      // through a 2 MiB page 0x400000-0x5FFFFF
        var crossing = At(0x60_0FFE, crossesPage: true);  // runs into 0x601000
        var segmented = At(0x3050, ExecMode.Code32, csBase: 0x20_0000); // linear 0x203050
        Fill(cache, inPage, global: true); Fill(cache, nextPage); Fill(cache, inLarge, Large); Fill(cache, crossing); Fill(cache, segmented);
        Assert.Same(inPage, cache.Probe(inPage.Rip, ExecMode.Code64, 0)); // five different slots
        Assert.Same(segmented, cache.Probe(segmented.Rip, ExecMode.Code32, 0x20_0000));

        cache.FlushPage(0x20_3FF8);
        Assert.Null(cache.Probe(inPage.Rip, ExecMode.Code64, 0));
        Assert.Null(cache.Probe(segmented.Rip, ExecMode.Code32, 0x20_0000)); // its linear address, not its RIP, is in the page
        Assert.Same(nextPage, cache.Probe(nextPage.Rip, ExecMode.Code64, 0));
        Assert.Same(inLarge, cache.Probe(inLarge.Rip, ExecMode.Code64, 0));
        Assert.Null(cache.Probe(crossing.Rip, ExecMode.Code64, 0)); // crossing pages, it goes with any INVLPG

        cache.FlushPage(0x5F_F000); // elsewhere in the large page
        Assert.Null(cache.Probe(inLarge.Rip, ExecMode.Code64, 0));
        Assert.Same(nextPage, cache.Probe(nextPage.Rip, ExecMode.Code64, 0));
    }
}
