using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>Compiled code outside 64-bit mode reads RAM in place while CR0.PG is clear (linear = physical, SDM Vol. 3A
/// 4.1.1). These hold it to the architecture where that shortcut could go wrong: paging turned on or off by the guest
/// inside a compiled loop or by the host between runs (reads must then follow the page tables), and reads that reach
/// past the end of RAM (the bus answers those bytes).</summary>
public sealed unsafe class DirectReadTests
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
}
