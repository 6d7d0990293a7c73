using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>Compiled code reads RAM without a TLB probe inside the read window (CpuState.WinBase): all of RAM while CR0.PG
/// is clear (linear = physical, SDM Vol. 3A 4.1.1), else the large page of the last read-TLB fill. These hold it to the
/// architecture where that shortcut could go wrong: paging turned on or off by the guest inside a compiled loop or by the
/// host between runs, reads past the end of RAM (the bus answers those bytes), and a large page whose mapping INVLPG or a
/// CR3 load invalidates, or that lies outside RAM.</summary>
public sealed unsafe class ReadWindowTests
{
    const uint Data = 0x40_0000, Other = 0x80_0000;

    /// <summary>A 32-bit guest with paging off and CR3 pointing at 32-bit tables that map the code and stack 1:1 and
    /// <see cref="Data"/> to <see cref="Other"/>; physical Data holds 1 and Other 100.</summary>
    static PagingGuest Guest(JitOptions options, Action<Assembler> code)
    {
        var g = new PagingGuest(1, 32, options);
        g.Cpu.SetFlat32(0x1000, 0x8000);
        ulong pd = g.NewTable();
        for (uint lin = 0; lin < 0x10000; lin += 0x1000) g.Map32(pd, lin, lin, (uint)(P | RW));
        g.Map32(pd, Data, Other, (uint)(P | RW));
        g.Write32(Data, 1);
        g.Write32(Other, 100);
        g.S->Cr3 = pd;
        g.Code(0x1000, 0x1000, code);
        return g;
    }

    public static TheoryData<string> Tiering => new() { "tier0", "compile-first", "tiered" };

    static JitOptions Options(string tiering) => tiering switch
    {
        "tier0" => JitOptions.InterpretOnly,
        "compile-first" => JitOptions.CompileFirst,
        // Hot after 50 runs, compiled on this thread: the loop becomes one method whose back-edge stays inside it.
        _ => new JitOptions { TierUpThreshold = 50, CompileSynchronously = true },
    };

    [Theory]
    [MemberData(nameof(Tiering))]
    public void Reads_follow_paging_that_the_guest_turns_on_and_off_inside_a_loop(string tiering)
    {
        const int Iterations = 600;
        using var g = Guest(Options(tiering), a =>
        {
            var top = a.CreateLabel();
            a.mov(esi, Iterations);
            a.xor(edi, edi);
            a.Label(ref top);
            a.mov(eax, __dword_ptr[Data]);
            a.add(edi, eax);
            a.mov(ecx, cr0);
            a.xor(ecx, unchecked((int)0x8000_0000));
            a.mov(cr0, ecx);
            a.dec(esi);
            a.jnz(top);
            a.hlt();
        });
        g.AssertHlt();
        // Even iterations read with paging off (physical Data), odd ones through the tables (Data -> Other).
        Assert.Equal(Iterations / 2 * 1u + Iterations / 2 * 100u, (uint)g.Cpu.Gpr(7));
        Assert.Equal(0UL, g.S->Cr0 & Cr0.PG);
    }

    [Theory]
    [MemberData(nameof(Tiering))]
    public void Code_compiled_without_paging_reads_through_the_tables_once_the_host_enables_paging(string tiering)
    {
        using var g = Guest(Options(tiering), a =>
        {
            a.mov(eax, __dword_ptr[Data]);
            a.hlt();
        });
        ulong RunOnce() { g.S->Rip = 0x1000; g.AssertHlt(); return g.Cpu.Gpr(0); }
        for (int k = 0; k < 60; k++) Assert.Equal(1UL, RunOnce());
        g.EnablePaging(g.S->Cr3, 0);
        Assert.Equal(100UL, RunOnce());
        g.S->Cr0 &= ~Cr0.PG;
        g.Cpu.UpdateMode();
        g.Cpu.Mmu.FlushAll();
        Assert.Equal(1UL, RunOnce());
    }

    [Fact]
    public void Compiled_reads_without_paging_leave_the_read_tlb_untouched()
    {
        // The shortcut itself: tier 0 fills a read-TLB entry for the page, compiled code reads RAM without one.
        foreach (var (options, filled) in new[] { (JitOptions.InterpretOnly, true), (JitOptions.CompileFirst, false) })
        {
            using var g = Guest(options, a => { a.mov(eax, __dword_ptr[Data]); a.hlt(); });
            g.AssertHlt();
            Assert.Equal(1UL, g.Cpu.Gpr(0));
            ulong tag = g.S->TlbRead[((Data >> 12) & (CpuState.TlbEntries - 1)) * 2];
            Assert.Equal(filled, tag == Data);
        }
    }

    [Theory]
    [InlineData(4, 0x1234_5678u)]       // the last dword of RAM: all RAM
    [InlineData(2, 0xFFFF_1234u)]       // two bytes of RAM, two the bus answers with all-ones (no device there)
    [InlineData(1, 0xFFFF_FF12u)]
    public void A_read_past_the_end_of_ram_takes_its_missing_bytes_from_the_bus(int inRam, uint expected)
    {
        foreach (var options in new[] { JitOptions.InterpretOnly, JitOptions.CompileFirst })
        {
            using var g = Guest(options, a => { a.mov(eax, __dword_ptr[ebx]); a.hlt(); });
            ulong end = g.Ram.Size;
            g.Write32(end - 4, 0x1234_5678);
            ulong at = end - (ulong)inRam;
            g.Cpu.Gpr(3) = at;
            // The dword at 'at' as RAM holds it, shifted: its first inRam bytes are RAM's last inRam bytes.
            g.AssertHlt();
            Assert.Equal(expected, (uint)g.Cpu.Gpr(0));
        }
    }

    const ulong Large = 0x4000_0000, Phys = 0x40_0000, NewPhys = 0x60_0000;

    /// <summary>64-bit paging: code, stack and the page tables 1:1 in 4 KiB pages, <see cref="Large"/> a 2 MiB page at
    /// <paramref name="phys"/>. Physical Phys + 0x1000 k holds k + 1, NewPhys + 0x1000 k holds 100 (k + 1).</summary>
    /// <summary>A new PML4 mapping the code and stack (0-64 KiB) and the page tables (1 MiB-1.0625 MiB) 1:1 in 4 KiB pages.</summary>
    static ulong IdentityRoot(PagingGuest g)
    {
        ulong root = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(root, lin, lin, P | RW);
        for (ulong lin = 0x10_0000; lin < 0x11_0000; lin += 0x1000) g.Map64(root, lin, lin, P | RW);
        return root;
    }

    static (PagingGuest G, ulong Pde) LargePageGuest(int tier, ulong phys, Action<Assembler> code, bool profiled = false)
    {
        // profiled: tier 1 compiles after 50 tier-0 runs, so blocks carry the read profile that puts the window first.
        var g = new PagingGuest(tier, 64, profiled && tier == 1 ? new JitOptions { TierUpThreshold = 50, CompileSynchronously = true } : null);
        g.Cpu.SetFlat64(0x1000, 0x8000);
        ulong pml4 = IdentityRoot(g);
        ulong pde = g.Map64(pml4, Large, phys, P | RW, leafLevel: 2);
        for (ulong k = 0; k < 4; k++) { g.Write64(Phys + k * 0x1000, k + 1); g.Write64(NewPhys + k * 0x1000, 100 * (k + 1)); }
        g.Code(0x1000, 0x1000, code);
        g.EnablePaging(pml4, Cr4Pae);
        return (g, pde);
    }

    /// <summary>Points the read-TLB entry of <paramref name="lin"/>'s 4 KiB piece at physical <paramref name="phys"/>: a
    /// read that goes through the TLB then sees that page, one through the window the page tables' own.</summary>
    static void PoisonTlb(PagingGuest g, ulong lin, ulong phys)
    {
        ulong page = lin & ~0xFFFUL;
        ulong* e = g.S->TlbRead + ((page >> 12) & (CpuState.TlbEntries - 1)) * 2;
        e[1] = (ulong)g.Ram.Base + phys - page;
        e[0] = page;
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void A_large_page_serves_its_other_4k_pieces_through_the_window_in_compiled_code(int tier)
    {
        var (g, _) = LargePageGuest(tier, Phys, a =>
        {
            var top = a.CreateLabel();
            a.mov(rsi, Large);
            a.mov(r8d, 100);
            a.Label(ref top);
            a.mov(rax, __qword_ptr[rsi]);
            a.mov(rbx, __qword_ptr[rsi + 0x1000]);
            a.mov(rcx, __qword_ptr[rsi + 0x2ffc]); // a qword over two 4 KiB pieces of the same large page
            a.dec(r8d);
            a.jnz(top);
            a.hlt();
        }, profiled: true);
        using var _g = g;
        g.AssertHlt();
        Assert.Equal([1UL, 2, 4UL << 32], new[] { g.Cpu.Gpr(0), g.Cpu.Gpr(3), g.Cpu.Gpr(1) });
        PoisonTlb(g, Large + 0x1000, NewPhys + 0x1000);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal(tier == 0 ? 200UL : 2UL, g.Cpu.Gpr(3)); // compiled code read the piece through the window
    }

    /// <summary>Code that runs <paramref name="reads"/> (default: [RSI + R9] into RBX) 100 times with R9 = 0x1000 (hot, so
    /// compiled after a profile that puts the window first), then <paramref name="between"/>, then the reads once more
    /// with the same compiled code.</summary>
    static void WarmThenRead(Assembler a, Action<Assembler> between, Action<Assembler>? reads = null)
    {
        var warm = a.CreateLabel();
        var read = a.CreateLabel();
        a.mov(rsi, Large);
        a.mov(r9d, 0x1000);
        a.mov(r8d, 100);
        a.Label(ref warm);
        a.call(read);
        a.dec(r8d);
        a.jnz(warm);
        between(a);
        a.call(read);
        a.hlt();
        a.Label(ref read);
        if (reads != null) reads(a);
        else a.mov(rbx, __qword_ptr[rsi + r9]);
        a.ret();
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Invlpg_anywhere_in_the_large_page_drops_the_window(int tier)
    {
        var (g, pde) = LargePageGuest(tier, Phys, a => { }, profiled: true);
        using var _g = g;
        g.Code(0x1000, 0x1000, a => WarmThenRead(a, a =>
        {
            a.mov(rdi, pde);
            a.mov(rdx, NewPhys | P | RW | PS);
            a.mov(__qword_ptr[rdi], rdx);          // remap the 2 MiB page
            a.invlpg(__byte_ptr[rsi + 0x5000]);    // any address in it invalidates all of it (SDM 4.10.4.1)
        }));
        g.AssertHlt();
        Assert.Equal(200UL, g.Cpu.Gpr(3));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void A_cr3_load_drops_a_window_that_is_not_global(int tier)
    {
        var (g, _) = LargePageGuest(tier, Phys, a => { }, profiled: true);
        using var _g = g;
        // A second address space: the same 1:1 pieces, the large page at NewPhys.
        ulong pml4b = IdentityRoot(g);
        g.Map64(pml4b, Large, NewPhys, P | RW, leafLevel: 2);
        g.Code(0x1000, 0x1000, a => WarmThenRead(a, a => { a.mov(rcx, pml4b); a.mov(cr3, rcx); }));
        g.AssertHlt();
        Assert.Equal(200UL, g.Cpu.Gpr(3));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void A_large_page_that_runs_past_the_end_of_ram_never_becomes_the_window(int tier)
    {
        // A 1 GiB page at physical 0 over 32 MiB of RAM: its first bytes are RAM, the rest has no device (all-ones).
        var (g, _) = LargePageGuest(tier, Phys, a => WarmThenRead(a, a => a.mov(r9d, 32 << 20)), profiled: true);
        using var _g = g;
        ulong pml4 = g.S->Cr3;
        ulong pdpt = g.Read64(pml4) & 0x000F_FFFF_FFFF_F000;
        g.Write64(pdpt + ((Large >> 30) & 511) * 8, 0 | P | RW | PS);
        g.Cpu.Mmu.FlushAll();
        g.AssertHlt();
        Assert.Equal(ulong.MaxValue, g.Cpu.Gpr(3));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Neighbouring_large_pages_at_the_same_offset_join_the_window_and_no_others(int tier)
    {
        const ulong TwoMiB = 0x20_0000;
        var (g, _) = LargePageGuest(tier, Phys, a =>
        {
            // A different 4 KiB piece in each page, so that no two share a TLB slot.
            var top = a.CreateLabel();
            a.mov(rsi, Large);
            a.mov(r8d, 100);
            a.Label(ref top);
            a.mov(rcx, __qword_ptr[rsi + 2 * (int)TwoMiB + 0x3000]); // page 2: accessed, another offset: never joins
            for (int k = 0; k < 4; k++) a.mov(rax, __qword_ptr[rsi + 0x1000]);   // page 0: opens the window
            a.mov(rbx, __qword_ptr[rsi + (int)TwoMiB + 0x2000]);    // page 1: same offset, accessed: joins it
            a.dec(r8d);
            a.jnz(top);
            a.hlt();
        }, profiled: true);
        using var _g = g;
        ulong pml4 = g.S->Cr3;
        g.Map64(pml4, Large + TwoMiB, Phys + TwoMiB, P | RW | A, leafLevel: 2);
        g.Map64(pml4, Large + 2 * TwoMiB, 0xC0_0000, P | RW | A, leafLevel: 2);
        g.Write64(Phys + 0x1000, 1);
        g.Write64(Phys + TwoMiB + 0x2000, 2);
        g.Write64(0xC0_3000, 3);
        g.Write64(Phys + 2 * TwoMiB + 0x3000, 99);      // what page 2 would read at the window's offset
        g.Cpu.Mmu.FlushAll();
        g.AssertHlt();
        Assert.Equal([1UL, 2, 3], new[] { g.Cpu.Gpr(0), g.Cpu.Gpr(3), g.Cpu.Gpr(1) });
        g.Write64(0xE0_1000, 555);
        g.Write64(0xE0_2000, 666);
        PoisonTlb(g, Large + TwoMiB + 0x2000, 0xE0_1000);
        PoisonTlb(g, Large + 2 * TwoMiB + 0x3000, 0xE0_2000);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal(tier == 0 ? 555UL : 2UL, g.Cpu.Gpr(3)); // page 1 through the window in compiled code
        Assert.Equal(666UL, g.Cpu.Gpr(1));                  // page 2 through the TLB in both tiers
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void A_window_measured_before_an_invlpg_is_measured_again_after_it(int tier)
    {
        // Pages 0 and 1 at one offset make one window; page 1 is remapped and both are invalidated; page 0 filled again
        // must not bring back page 1's old translation with it.
        const ulong TwoMiB = 0x20_0000;
        var (g, _) = LargePageGuest(tier, Phys, a => { }, profiled: true);
        using var _g = g;
        ulong pde1 = g.Map64(g.S->Cr3, Large + TwoMiB, Phys + TwoMiB, P | RW | A, leafLevel: 2);
        g.Write64(Phys + TwoMiB + 0x2000, 2);
        g.Write64(0xC0_2000, 300);
        g.Code(0x1000, 0x1000, a => WarmThenRead(a, a =>
        {
            a.mov(rdi, pde1);
            a.mov(rdx, 0xC0_0000UL | P | RW | A | PS);
            a.mov(__qword_ptr[rdi], rdx);
            a.invlpg(__byte_ptr[rsi + (int)TwoMiB]);
            a.invlpg(__byte_ptr[rsi]);
            a.mov(r9d, 0x3000);                   // a piece of page 0 not read before: a sure TLB miss
        }, a =>
        {
            a.mov(rax, __qword_ptr[rsi + r9]);
            a.mov(rcx, __qword_ptr[rsi + (int)TwoMiB + 0x2000]);
        }));
        g.Cpu.Mmu.FlushAll();
        g.AssertHlt();
        Assert.Equal([4UL, 300], new[] { g.Cpu.Gpr(0), g.Cpu.Gpr(1) });
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void A_cr3_load_that_keeps_a_global_window_forgets_the_windows_measured_in_the_old_address_space(int tier)
    {
        // Pages 0 and 1 (not global) make one window, measured and remembered; a global large page G becomes the window;
        // a CR3 load keeps G but remaps page 1. Page 0 filled again must be measured again, not taken with page 1's old
        // translation from what was remembered.
        const ulong TwoMiB = 0x20_0000, GlobalPage = Large + 0x1000_0000;
        var (g, _) = LargePageGuest(tier, Phys, a => { }, profiled: true);
        using var _g = g;
        ulong pml4 = g.S->Cr3;
        g.Map64(pml4, Large + TwoMiB, Phys + TwoMiB, P | RW | A, leafLevel: 2);
        g.Map64(pml4, GlobalPage, 0xE0_0000, P | RW | A | G, leafLevel: 2);
        ulong pml4b = IdentityRoot(g);
        g.Map64(pml4b, Large, Phys, P | RW | A, leafLevel: 2);
        g.Map64(pml4b, Large + TwoMiB, 0xC0_0000, P | RW | A, leafLevel: 2);
        g.Map64(pml4b, GlobalPage, 0xE0_0000, P | RW | A | G, leafLevel: 2);
        g.Write64(Phys + TwoMiB + 0x2000, 2);
        g.Write64(0xC0_2000, 300);
        g.Code(0x1000, 0x1000, a => WarmThenRead(a, a =>
        {
            a.mov(rdi, GlobalPage);
            a.mov(rdx, __qword_ptr[rdi]);          // the global page becomes the window
            a.mov(rcx, pml4b);
            a.mov(cr3, rcx);
            a.mov(r9d, 0x3000);                    // a piece of page 0 not read before: a sure TLB miss
        }, a =>
        {
            a.mov(rax, __qword_ptr[rsi + r9]);
            a.mov(rcx, __qword_ptr[rsi + (int)TwoMiB + 0x2000]);
        }));
        g.S->Cr4 |= Cr4Pge;
        g.Cpu.Mmu.FlushAll();
        g.AssertHlt();
        Assert.Equal([4UL, 300], new[] { g.Cpu.Gpr(0), g.Cpu.Gpr(1) });
    }
}
