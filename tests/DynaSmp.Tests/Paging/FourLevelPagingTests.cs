using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>4-level paging (Intel SDM Vol. 3A 4.5) in 64-bit mode: code at 0x1000 and the stack page below
/// 0x8000 are identity-mapped with 4 KiB user-accessible pages; everything else is mapped per test.</summary>
public unsafe class FourLevelPagingTests
{
    const ulong Data4K = 0x4000_0000;   // PML4[0] PDPT[1] PD[0] PT[0]
    const ulong Data2M = 0x8000_0000;   // PML4[0] PDPT[2] PD[0], 2 MiB page
    const ulong Data1G = 0x80_0000_0000; // PML4[1] PDPT[0], 1 GiB page

    static (PagingGuest g, ulong pml4) Setup(int tier, Action<Assembler> code, ulong eferBits = 0, ulong cr4Bits = 0, bool wp = true) =>
        LongMode(tier, code, eferBits, cr4Bits, wp);

    static ulong Entry(PagingGuest g, ulong pml4, ulong lin, int level)
    {
        // Physical address of the entry at `level` (4 = PML4E ... 1 = PTE) on the walk for `lin`.
        ulong table = pml4;
        for (int l = 4; ; l--)
        {
            ulong addr = table + ((lin >> (12 + 9 * (l - 1))) & 511) * 8;
            if (l == level) return addr;
            table = g.Read64(addr) & 0x000F_FFFF_FFFF_F000;
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Translates_through_4K_2M_and_1G_pages(int tier)
    {
        var (g, pml4) = Setup(tier, a =>
        {
            a.mov(rbx, Data4K + 0x10); a.mov(rax, __qword_ptr[rbx]);
            a.mov(rbx, Data2M + 0x12340); a.mov(rcx, __qword_ptr[rbx]);
            a.mov(rbx, Data1G + 0x30_0008); a.mov(rdx, __qword_ptr[rbx]);
            a.mov(__qword_ptr[rbx + 8], rax); // store through the 1 GiB page
            a.hlt();
        });
        using var _ = g;
        g.Map64(pml4, Data4K, 0x20_0000, P | RW);
        g.Map64(pml4, Data2M, 0x40_0000, P | RW, leafLevel: 2);
        g.Map64(pml4, Data1G, 0, P | RW, leafLevel: 3);
        g.Write64(0x20_0010, 0x1111);
        g.Write64(0x41_2340, 0x2222);
        g.Write64(0x30_0008, 0x3333);
        g.AssertHlt();
        Assert.Equal(0x1111UL, g.Cpu.Gpr(0));
        Assert.Equal(0x2222UL, g.Cpu.Gpr(1));
        Assert.Equal(0x3333UL, g.Cpu.Gpr(2));
        Assert.Equal(0x1111UL, g.Read64(0x30_0010));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Accessed_and_dirty_bits_follow_reads_writes_and_fetches(int tier)
    {
        // SDM 4.8: A is set in every entry used by a translation, D only in the entry mapping the page, on writes.
        var (g, pml4) = Setup(tier, a =>
        {
            a.mov(rbx, Data4K); a.mov(rax, __qword_ptr[rbx]);
            a.mov(__qword_ptr[rbx + 0x1000], rax);
            a.mov(rbx, Data2M); a.mov(__qword_ptr[rbx], rax);
            a.hlt();
        });
        using var _ = g;
        ulong readPte = g.Map64(pml4, Data4K, 0x20_0000, P | RW);
        ulong writePte = g.Map64(pml4, Data4K + 0x1000, 0x20_1000, P | RW);
        ulong bigPde = g.Map64(pml4, Data2M, 0x40_0000, P | RW, leafLevel: 2);
        ulong unusedPte = g.Map64(pml4, Data4K + 0x2000, 0x20_2000, P | RW);
        g.AssertHlt();
        Assert.Equal(0x20_0000 | P | RW | A, g.Read64(readPte));
        Assert.Equal(0x20_1000 | P | RW | A | D, g.Read64(writePte));
        Assert.Equal(0x40_0000 | P | RW | PS | A | D, g.Read64(bigPde));
        Assert.Equal(0x20_2000 | P | RW, g.Read64(unusedPte));
        for (int level = 2; level <= 4; level++)
            Assert.Equal(A, g.Read64(Entry(g, pml4, Data4K, level)) & (A | D));
        Assert.Equal(A, g.Read64(Entry(g, pml4, Data2M, 3)) & (A | D));
        // The code page was only fetched from; the stack page was not touched at all.
        Assert.Equal(A, g.Read64(Entry(g, pml4, 0x1000, 1)) & (A | D));
        Assert.Equal(0UL, g.Read64(Entry(g, pml4, 0x7000, 1)) & (A | D));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Not_present_read_and_write_fault_with_cr2(int tier)
    {
        var (g, pml4) = Setup(tier, a => { a.mov(rax, __qword_ptr[rbx]); a.hlt(); });
        using var _ = g;
        g.Cpu.Gpr(3) = Data4K + 0x18;
        g.AssertPageFault(0, Data4K + 0x18); // PML4E present, PDPTE not present: error code 0 (read, supervisor)
        Assert.Equal(0x1000UL, g.S->Rip); // a fault: RIP of the faulting MOV

        var (g2, pml42) = Setup(tier, a => { a.mov(rbx, Data4K + 0x20); a.mov(__qword_ptr[rbx], rax); a.hlt(); });
        using var __ = g2;
        ulong pte = g2.Map64(pml42, Data4K, 0x20_0000, 0); // PTE not present
        g2.AssertPageFault(PageFaultErrorW, Data4K + 0x20);
        Assert.Equal(0UL, g2.Read64(Entry(g2, pml42, Data4K, 2)) & A); // a faulting walk sets no accessed bit
        Assert.Equal(0x20_0000UL, g2.Read64(pte));
    }

    const ulong PageFaultErrorW = 2;

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Supervisor_write_to_read_only_page_faults_only_with_cr0_wp(int tier)
    {
        static void Code(Assembler a) { a.mov(rbx, Data4K + 8); a.mov(__qword_ptr[rbx], 0x77); a.hlt(); }
        var (g, pml4) = Setup(tier, Code, wp: true);
        using (g)
        {
            g.Map64(pml4, Data4K, 0x20_0000, P | US);
            g.AssertPageFault(3, Data4K + 8); // P | W (SDM 4.6.1: CR0.WP = 1 protects read-only pages from CPL 0)
            Assert.Equal(0UL, g.Read64(0x20_0008));
        }
        var (g2, pml42) = Setup(tier, Code, wp: false);
        using (g2)
        {
            ulong pte = g2.Map64(pml42, Data4K, 0x20_0000, P);
            g2.AssertHlt();
            Assert.Equal(0x77UL, g2.Read64(0x20_0008));
            Assert.Equal(0x20_0000 | P | A | D, g2.Read64(pte));
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void User_access_to_supervisor_page_faults(int tier)
    {
        var (g, pml4) = Setup(tier, a => { a.mov(rbx, Data4K); a.mov(rax, __qword_ptr[rbx]); a.hlt(); });
        using (g)
        {
            g.Map64(pml4, Data4K, 0x20_0000, P | RW); // U/S = 0 in the PTE
            g.EnterUser();
            g.AssertPageFault(5, Data4K); // P | U
        }
        // U/S must be 1 at every level (SDM 4.6.1): a user PTE under a supervisor PDPTE is still supervisor.
        var (g2, pml42) = Setup(tier, a => { a.mov(rbx, 0xC000_0000); a.mov(__qword_ptr[rbx], rax); a.hlt(); });
        using (g2)
        {
            g2.Map64(pml42, 0xC000_0000, 0x20_0000, P | RW | US, upper: P | RW);
            g2.EnterUser();
            g2.AssertPageFault(7, 0xC000_0000); // P | W | U
        }
        // And a user page is fine for CPL 3, writes included.
        var (g3, pml43) = Setup(tier, a => { a.mov(rbx, Data4K); a.mov(__qword_ptr[rbx], 5); a.ud2(); });
        using (g3)
        {
            g3.Map64(pml43, Data4K, 0x20_0000, P | RW | US);
            g3.EnterUser();
            Assert.Equal(ExitReason.Exception, g3.Run()); // UD2 ends the user program (HLT would be #GP at CPL 3)
            Assert.Equal(Vector.UD, g3.Cpu.ExitVector);
            Assert.Equal(5UL, g3.Read64(0x20_0000));
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Fetch_from_execute_disable_page_faults_with_id_bit(int tier)
    {
        static void Code(Assembler a)
        {
            a.mov(rbx, Data4K); a.mov(rax, __qword_ptr[rbx]); // reads from an XD page are allowed
            a.jmp(rbx);
        }
        var (g, pml4) = Setup(tier, Code, eferBits: Efer.NXE);
        using (g)
        {
            g.Map64(pml4, Data4K, 0x20_0000, P | RW | XD);
            g.Write64(0x20_0000, 0xF4F4); // HLT HLT
            g.AssertPageFault(0x11, Data4K); // P | I/D (SDM 4.7: I/D reported with PAE/4-level paging and NXE = 1)
            Assert.Equal(0xF4F4UL, g.Cpu.Gpr(0));
        }
        // Without EFER.NXE bit 63 is reserved: the read already faults with RSVD.
        var (g2, pml42) = Setup(tier, Code);
        using (g2)
        {
            g2.Map64(pml42, Data4K, 0x20_0000, P | RW | XD);
            g2.AssertPageFault(9, Data4K); // P | RSVD
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Reserved_bits_fault_with_rsvd(int tier)
    {
        static void Code(Assembler a) { a.mov(rbx, Data4K); a.mov(__qword_ptr[rbx], rax); a.hlt(); }
        // Bit 45 of a PTE is above MAXPHYADDR (40): reserved (SDM 4.5.4, Table 4-20).
        var (g, pml4) = Setup(tier, Code);
        using (g)
        {
            g.Map64(pml4, Data4K, 0x20_0000 | (1UL << 45), P | RW);
            g.AssertPageFault(0xB, Data4K); // P | W | RSVD
        }
        // Bit 13 of a 2 MiB PDE is reserved (bits 20:13, Table 4-18).
        var (g2, pml42) = Setup(tier, a => { a.mov(rbx, Data2M); a.mov(rax, __qword_ptr[rbx]); a.hlt(); });
        using (g2)
        {
            g2.Map64(pml42, Data2M, 0x40_0000 | (1UL << 13), P | RW, leafLevel: 2);
            g2.AssertPageFault(9, Data2M);
        }
        // PS (bit 7) of a PML4E is reserved (Table 4-15).
        var (g3, pml43) = Setup(tier, a => { a.mov(rbx, Data1G); a.mov(rax, __qword_ptr[rbx]); a.hlt(); });
        using (g3)
        {
            g3.Map64(pml43, Data1G, 0, P | RW, leafLevel: 3);
            g3.Write64(pml43 + 8, g3.Read64(pml43 + 8) | PS);
            g3.AssertPageFault(9, Data1G);
        }
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Changed_pte_is_seen_after_invlpg_flush_and_cr3_switch_changes_mapping(int tier)
    {
        var (g, pml4) = Setup(tier, a => { a.mov(rbx, Data4K); a.mov(rax, __qword_ptr[rbx]); a.hlt(); });
        using var _ = g;
        ulong pte = g.Map64(pml4, Data4K, 0x20_0000, P | RW);
        g.Write64(0x20_0000, 0x1111);
        g.Write64(0x20_1000, 0x2222);
        g.Write64(0x20_2000, 0x3333);
        g.AssertHlt();
        Assert.Equal(0x1111UL, g.Cpu.Gpr(0));

        g.Write64(pte, 0x20_1000 | P | RW);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal(0x1111UL, g.Cpu.Gpr(0)); // the TLB still holds the old translation (SDM 4.10.4.2)
        g.Cpu.Mmu.FlushPage(Data4K + 0x567);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal(0x2222UL, g.Cpu.Gpr(0));

        // A second address space maps the same linear page elsewhere.
        ulong pml4b = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4b, lin, lin, P | RW | US);
        g.Map64(pml4b, Data4K, 0x20_2000, P | RW);
        ulong old = g.S->Cr3;
        g.S->Cr3 = pml4b;
        g.Cpu.Mmu.OnControlRegisterWrite(3, old, pml4b);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal(0x3333UL, g.Cpu.Gpr(0));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Global_pages_survive_cr3_load_with_pge(int tier)
    {
        var (g, pml4) = Setup(tier, a =>
        {
            a.mov(rbx, Data4K); a.mov(rax, __qword_ptr[rbx]); a.mov(rcx, __qword_ptr[rbx + 0x1000]); a.hlt();
        }, cr4Bits: Cr4Pge);
        using var _ = g;
        g.Map64(pml4, Data4K, 0x20_0000, P | RW | G);
        g.Map64(pml4, Data4K + 0x1000, 0x20_1000, P | RW);
        for (ulong k = 0; k < 4; k++) g.Write64(0x20_0000 + k * 0x1000, 0x1111 * (k + 1));
        g.AssertHlt();
        Assert.Equal((0x1111UL, 0x2222UL), (g.Cpu.Gpr(0), g.Cpu.Gpr(1)));

        ulong pml4b = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4b, lin, lin, P | RW | US);
        g.Map64(pml4b, Data4K, 0x20_2000, P | RW | G);
        g.Map64(pml4b, Data4K + 0x1000, 0x20_3000, P | RW);
        ulong old = g.S->Cr3;
        g.S->Cr3 = pml4b;
        g.Cpu.Mmu.OnControlRegisterWrite(3, old, pml4b);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal((0x1111UL, 0x4444UL), (g.Cpu.Gpr(0), g.Cpu.Gpr(1))); // global entry kept, other reloaded

        // Clearing CR4.PGE flushes global entries too (SDM 4.10.4.1).
        ulong cr4 = g.S->Cr4;
        g.S->Cr4 = cr4 & ~Cr4Pge;
        g.Cpu.Mmu.OnControlRegisterWrite(4, cr4, g.S->Cr4);
        g.S->Rip = 0x1000;
        g.AssertHlt();
        Assert.Equal((0x3333UL, 0x4444UL), (g.Cpu.Gpr(0), g.Cpu.Gpr(1)));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Remapped_code_page_runs_the_new_code_after_flush(int tier)
    {
        // The code at 0x1000 jumps (a direct, cross-page branch) to a linear page whose physical page changes.
        var (g, pml4) = Setup(tier, a => { a.inc(rdx); a.jmp(Data4K); });
        using var _ = g;
        g.Cpu.Gpr(2) = 0; // RESET leaves EDX = the processor signature
        ulong pte = g.Map64(pml4, Data4K, 0x20_0000, P | RW);
        g.Code(0x20_0000, Data4K, a => { a.mov(eax, 1); a.hlt(); });
        g.Code(0x20_1000, Data4K, a => { a.mov(eax, 2); a.hlt(); });
        for (int k = 0; k < 3; k++)
        {
            g.S->Rip = 0x1000;
            g.AssertHlt();
            Assert.Equal(1UL, g.Cpu.Gpr(0));
        }
        g.Write64(pte, 0x20_1000 | P | RW);
        g.Cpu.Mmu.FlushPage(Data4K);
        for (int k = 0; k < 3; k++)
        {
            g.S->Rip = 0x1000;
            g.AssertHlt();
            Assert.Equal(2UL, g.Cpu.Gpr(0));
        }
        Assert.Equal(6UL, g.Cpu.Gpr(2));
    }

    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Smep_blocks_supervisor_fetch_from_user_page(int tier)
    {
        // SDM 4.6.1: with CR4.SMEP = 1 supervisor-mode fetches from user-mode addresses are not allowed.
        var (g, pml4) = Setup(tier, a => { a.mov(rbx, 0x20_0000); a.jmp(rbx); }, cr4Bits: Cr4Smep);
        using var _ = g;
        g.Map64(pml4, 0x1000, 0x1000, P | RW); // the caller's own code page is supervisor
        g.Map64(pml4, 0x20_0000, 0x20_0000, P | RW | US);
        g.Write64(0x20_0000, 0xF4);
        g.AssertPageFault(0x11, 0x20_0000); // P | I/D (SMEP makes I/D reported)
    }

    /// <summary>A page fault at the head of a loop whose previous iteration left its flags pending in translated code's
    /// locals (a branch inside a region carries the flag record in locals, not CpuState): the exception must still see
    /// the flags of that iteration's SUB, in both tiers.</summary>
    [Theory, MemberData(nameof(Tiers), MemberType = typeof(PagingGuest))]
    public void Fault_at_a_loop_head_sees_the_flags_the_previous_iteration_left_pending(int tier)
    {
        var (g, pml4) = Setup(tier, a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 0);
            a.Label(ref top);
            a.mov(rdx, __qword_ptr[rbx]); // faults on the third page
            a.add(rbx, 0x1000);
            a.sub(ecx, 1);
            a.jmp(top);
        });
        using var _ = g;
        g.Map64(pml4, Data4K, 0x20_0000, P | RW | A);
        g.Map64(pml4, Data4K + 0x1000, 0x20_1000, P | RW | A);
        g.Cpu.Gpr(3) = Data4K;
        g.AssertPageFault(0, Data4K + 0x2000);
        Assert.Equal(0xFFFF_FFFEUL, g.Cpu.Gpr(1)); // two iterations retired: 0 - 1 - 1
        ulong flags = DynaSmp.Jit.Cpu.Flags.Get(g.S) & RFlags.Status;
        Assert.Equal(RFlags.SF, flags); // 0xFFFFFFFF - 1: no borrow, negative, odd parity, no AF
    }
}
