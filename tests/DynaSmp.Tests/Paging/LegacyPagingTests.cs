using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>32-bit paging (SDM 4.3) and PAE paging (SDM 4.4) running flat 32-bit code at 0x1000.</summary>
public unsafe class LegacyPagingTests
{
    static (PagingGuest g, ulong pd) Setup32(int tier, Action<Assembler> code, bool pse = true)
    {
        var g = new PagingGuest(tier, 32);
        g.Cpu.SetFlat32(0x1000, 0x8000);
        ulong pd = g.NewTable();
        for (uint lin = 0; lin < 0x10000; lin += 0x1000) g.Map32(pd, lin, lin, (uint)(P | RW | US));
        g.Code(0x1000, 0x1000, code);
        g.EnablePaging(pd, pse ? Cr4Pse : 0);
        return (g, pd);
    }

    static (PagingGuest g, ulong pdpt) SetupPae(int tier, Action<Assembler> code, ulong eferBits = 0)
    {
        var g = new PagingGuest(tier, 32);
        g.Cpu.SetFlat32(0x1000, 0x8000);
        ulong pdpt = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pdpt, lin, lin, P | RW | US, pae: true);
        g.Code(0x1000, 0x1000, code);
        g.EnablePaging(pdpt, Cr4Pae, eferBits);
        return (g, pdpt);
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Thirty_two_bit_paging_translates_4K_and_4M_pages_and_sets_a_d(int tier)
    {
        var (g, pd) = Setup32(tier, a =>
        {
            a.mov(eax, __dword_ptr[0x8000_0010]);
            a.mov(ecx, __dword_ptr[0xC012_3450]);
            a.mov(__dword_ptr[0xC000_0000], eax);
            a.hlt();
        });
        using var _ = g;
        ulong pte = g.Map32(pd, 0x8000_0000, 0x30_0000, (uint)(P | RW));
        ulong pde4m = g.Map32(pd, 0xC000_0000, 0x40_0000, (uint)(P | RW), leafLevel: 2);
        g.Write32(0x30_0010, 0x1111);
        g.Write32(0x52_3450, 0x2222);
        g.AssertHlt();
        Assert.Equal(0x1111UL, g.Cpu.Gpr(0));
        Assert.Equal(0x2222UL, g.Cpu.Gpr(1));
        Assert.Equal(0x1111u, g.Read32(0x40_0000));
        Assert.Equal((uint)(0x30_0000 | P | RW | A), g.Read32(pte));
        Assert.Equal((uint)(0x40_0000 | P | RW | PS | A | D), g.Read32(pde4m));
        Assert.Equal(A, g.Read32(pd + (0x8000_0000u >> 22) * 4) & (A | D)); // the PDE over the PT: A only
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Thirty_two_bit_paging_faults(int tier)
    {
        // Not present: error 0 (no PDE at 0x80000000).
        var (g, pd) = Setup32(tier, a => { a.mov(eax, __dword_ptr[0x8000_0004]); a.hlt(); });
        using (g) g.AssertPageFault(0, 0x8000_0004);
        // Write to a read-only page at CPL 0 with CR0.WP = 1: P | W.
        var (g2, pd2) = Setup32(tier, a => { a.mov(__dword_ptr[0x8000_0008], eax); a.hlt(); });
        using (g2)
        {
            g2.Map32(pd2, 0x8000_0000, 0x30_0000, (uint)P);
            g2.AssertPageFault(3, 0x8000_0008);
        }
        // Bit 21 of a 4 MiB PDE is reserved (SDM Table 4-4 with MAXPHYADDR 40): P | RSVD.
        var (g3, pd3) = Setup32(tier, a => { a.mov(eax, __dword_ptr[0xC000_0000]); a.hlt(); });
        using (g3)
        {
            g3.Map32(pd3, 0xC000_0000, 0x40_0000 | (1u << 21), (uint)(P | RW), leafLevel: 2);
            g3.AssertPageFault(9, 0xC000_0000);
        }
        // Without CR4.PSE, PS is ignored and the PDE points at a page table.
        var (g4, pd4) = Setup32(tier, a => { a.mov(eax, __dword_ptr[0xC000_0004]); a.hlt(); }, pse: false);
        using (g4)
        {
            ulong table = g4.NewTable();
            g4.Write32(pd4 + (0xC000_0000u >> 22) * 4, (uint)(table | P | RW | PS));
            g4.Write32(table, 0x30_0000 | (uint)(P | RW));
            g4.Write32(0x30_0004, 0xABCD);
            g4.AssertHlt();
            Assert.Equal(0xABCDUL, g4.Cpu.Gpr(0));
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Pae_paging_translates_4K_and_2M_pages(int tier)
    {
        var (g, pdpt) = SetupPae(tier, a =>
        {
            a.mov(eax, __dword_ptr[0x8000_0010]);
            a.mov(ecx, __dword_ptr[0xC012_3450]);
            a.mov(__dword_ptr[0xC000_0000], eax);
            a.hlt();
        });
        using var _ = g;
        ulong pte = g.Map64(pdpt, 0x8000_0000, 0x30_0000, P | RW, pae: true);
        ulong pde2m = g.Map64(pdpt, 0xC000_0000, 0x40_0000, P | RW, leafLevel: 2, pae: true);
        g.Write32(0x30_0010, 0x1111);
        g.Write32(0x52_3450, 0x2222);
        g.AssertHlt();
        Assert.Equal(0x1111UL, g.Cpu.Gpr(0));
        Assert.Equal(0x2222UL, g.Cpu.Gpr(1));
        Assert.Equal(0x1111u, g.Read32(0x40_0000));
        Assert.Equal(0x30_0000 | P | RW | A, g.Read64(pte));
        Assert.Equal(0x40_0000 | P | RW | PS | A | D, g.Read64(pde2m));
        Assert.Equal(P, g.Read64(pdpt + 2 * 8) & 0xFFF); // PDPTEs have no accessed bit (SDM Table 4-8)
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Pae_paging_faults(int tier)
    {
        // Not-present PDPTE: error 0.
        var (g, _) = SetupPae(tier, a => { a.mov(eax, __dword_ptr[0x8000_0000]); a.hlt(); });
        using (g) g.AssertPageFault(0, 0x8000_0000);
        // Fetch from an XD page with NXE: P | I/D.
        var (g2, pdpt2) = SetupPae(tier, a => { a.mov(eax, 0x8000_0000); a.jmp(eax); }, Efer.NXE);
        using (g2)
        {
            g2.Map64(pdpt2, 0x8000_0000, 0x30_0000, P | RW | XD, pae: true);
            g2.Write32(0x30_0000, 0xF4);
            g2.AssertPageFault(0x11, 0x8000_0000);
        }
        // PAE entries reserve bits 62:52 (unlike 4-level, where they are ignored): P | RSVD.
        var (g3, pdpt3) = SetupPae(tier, a => { a.mov(eax, __dword_ptr[0x8000_0000]); a.hlt(); });
        using (g3)
        {
            g3.Map64(pdpt3, 0x8000_0000, 0x30_0000 | (1UL << 55), P | RW, pae: true);
            g3.AssertPageFault(9, 0x8000_0000);
        }
        // User read of a supervisor 2 MiB page: P | U.
        var (g4, pdpt4) = SetupPae(tier, a => { a.mov(eax, __dword_ptr[0xC000_0000]); a.ud2(); });
        using (g4)
        {
            g4.Map64(pdpt4, 0xC000_0000, 0x40_0000, P | RW, leafLevel: 2, pae: true);
            g4.EnterUser();
            g4.AssertPageFault(5, 0xC000_0000);
        }
    }
}
