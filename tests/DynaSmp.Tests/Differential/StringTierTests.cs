using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Paging;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using Outcome = DynaSmp.Tests.Differential.LoweredFlowTests.Outcome;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// Tier 1's string instructions on the edges the host-CPU group (<see cref="Groups"/> StringOps: values, DF, overlap, REP
/// counts, against the host) cannot reach because the host would fault or the code would change: a REP that faults part
/// way (#GP past 4 GiB in flat 32-bit code, a non-canonical address in 64-bit mode) must stop with RCX/RSI/RDI at the
/// faulting element and RIP on the instruction; a REP store into the code that follows it in the same block must be seen
/// by that code; stores past the end of RAM go to the bus element by element. Tier 0 is the oracle; each case also
/// asserts that tier 1 ran the string instruction inline (no tier-0 call).
/// </summary>
[Collection("Differential")]
public sealed unsafe class StringTierTests
{
    const ulong Rip = 0x1000;

    static byte[] Asm(int bits, Action<Assembler> body)
    {
        var a = new Assembler(bits);
        body(a);
        var w = new CodeBytes();
        a.Assemble(w, Rip);
        return w.ToArray();
    }

    static MachineState Input(ulong rcx, ulong rsi, ulong rdi, ulong rax = 0x1122_3344_5566_7788, bool down = false)
    {
        var st = new MachineState { Rflags = 0x202 | (down ? RFlags.DF : 0) };
        st.Gpr[0] = rax; st.Gpr[1] = rcx; st.Gpr[6] = rsi; st.Gpr[7] = rdi; st.Gpr[4] = 0x8000;
        return st;
    }

    static readonly JitOptions Profiled = JitOptions.CompileFirst with { ProfileFallbacks = true };

    const ulong Window = 0x10000;
    const int WindowLength = 0x10000;

    static void Pattern(DynaSmp.Jit.Memory.GuestRam ram)
    {
        var bytes = new byte[WindowLength];
        for (int k = 0; k < bytes.Length; k++) bytes[k] = (byte)(k * 7 + 3);
        ram.Write(Window, bytes);
    }

    static (Outcome T0, Outcome T1) Both(byte[] code, MachineState input, int bits, ulong memory = Window, int length = WindowLength)
    {
        var t0 = LoweredFlowTests.RunAt(code, input, bits, Rip, JitOptions.InterpretOnly, init: Pattern, memory: memory, memoryLength: length);
        var t1 = LoweredFlowTests.RunAt(code, input, bits, Rip, Profiled, init: Pattern, memory: memory, memoryLength: length);
        Assert.Equal((t0.Exit, t0.Vector, t0.Rip), (t1.Exit, t1.Vector, t1.Rip));
        Assert.Equal(t0.Gpr, t1.Gpr);
        Assert.Equal(t0.Flags, t1.Flags);
        Assert.Equal(t0.Memory, t1.Memory);
        Assert.True(t1.Calls is "" or "Hlt x1; ", "tier-0 calls: " + t1.Calls); // the string instructions ran inline
        return (t0, t1);
    }

    /// <summary>REP STOS fills with memset when every byte of the element is the same, element by element otherwise:
    /// both give the element pattern, in both tiers, forwards and backwards, and leave the bytes around it alone.</summary>
    [DifferentialTheory]
    [InlineData(1, 0x0UL)] [InlineData(1, 0xA5UL)]
    [InlineData(2, 0x0UL)] [InlineData(2, 0xFFFFUL)] [InlineData(2, 0x1234UL)] [InlineData(2, 0x3434UL)]
    [InlineData(4, 0x0UL)] [InlineData(4, 0x7F7F_7F7FUL)] [InlineData(4, 0x0102_0304UL)] [InlineData(4, 0x0000_FFFFUL)]
    [InlineData(8, 0x0UL)] [InlineData(8, 0xFFFF_FFFF_FFFF_FFFFUL)] [InlineData(8, 0x1122_3344_5566_7788UL)] [InlineData(8, 0x0000_0000_FFFF_FFFFUL)]
    public void Rep_stos_stores_the_element_pattern(int size, ulong value)
    {
        const ulong count = 700; // over a page for the larger sizes: more than one chunk
        foreach (bool down in new[] { false, true })
        {
            var code = Asm(64, a =>
            {
                if (size == 1) a.rep.stosb(); else if (size == 2) a.rep.stosw(); else if (size == 4) a.rep.stosd(); else a.rep.stosq();
            });
            ulong first = Window + 0x100;
            ulong start = down ? first + (count - 1) * (ulong)size : first;
            var (t0, _) = Both(code, Input(count, 0, start, value, down), 64);
            var expected = new byte[WindowLength];
            for (int k = 0; k < expected.Length; k++) expected[k] = (byte)(k * 7 + 3);
            for (int e = 0; e < (int)count; e++)
                for (int b = 0; b < size; b++) expected[0x100 + e * size + b] = (byte)(value >> (8 * b));
            Assert.Equal(expected, t0.Memory);
        }
    }

    [DifferentialFact]
    public void Rep_stos_past_4_GiB_faults_at_the_element_with_the_progress_made()
    {
        // rep stosd from EDI = 4 GiB - 18 (past RAM: the bus) with ECX = 8: four dwords fit, the fifth crosses 4 GiB: #GP(0).
        var code = Asm(32, a => a.rep.stosd());
        var (_, t1) = Both(code, Input(8, 0, 0xFFFF_FFEE), 32);
        Assert.Equal(ExitReason.Exception, t1.Exit);
        Assert.Equal(Vector.GP, t1.Vector);
        Assert.Equal(Rip, t1.Rip);
        Assert.Equal(4UL, t1.Gpr[1]);
        Assert.Equal(0xFFFF_FFFEUL, t1.Gpr[7]);
    }

    [Theory, MemberData(nameof(PagingGuest.Tiers), MemberType = typeof(PagingGuest))]
    public void Rep_movs_into_a_not_present_page_faults_at_the_element_with_the_progress_made(int tier)
    {
        // 64-bit paging: 0x20000-0x21FFF mapped, 0x22000 not. REP MOVSB of 0x300 bytes to 0x21F00: 0x100 bytes are
        // copied (the first byte through the slow path, the rest of the page in one chunk), then #PF(W) at 0x22000.
        using var g = new PagingGuest(tier, 64);
        g.Cpu.SetFlat64(0x1000, 0x8000);
        ulong pml4 = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4, lin, lin, PagingGuest.P | PagingGuest.RW);
        for (ulong lin = 0x20000; lin < 0x22000; lin += 0x1000) g.Map64(pml4, lin, lin, PagingGuest.P | PagingGuest.RW);
        g.Code(0x1000, 0x1000, a => { a.rep.movsb(); a.hlt(); });
        for (int k = 0; k < 0x300; k++) g.Ram.Span(0x20100 + (ulong)k, 1)[0] = (byte)(k + 1);
        g.EnablePaging(pml4, PagingGuest.Cr4Pae);
        g.S->Gpr[1] = 0x300; g.S->Gpr[6] = 0x20100; g.S->Gpr[7] = 0x21F00;
        g.AssertPageFault(errorCode: 2, cr2: 0x22000);
        Assert.Equal(0x1000UL, g.S->Rip);
        Assert.Equal(0x200UL, g.S->Gpr[1]);
        Assert.Equal(0x20200UL, g.S->Gpr[6]);
        Assert.Equal(0x22000UL, g.S->Gpr[7]);
        for (int k = 0; k < 0x100; k++) Assert.Equal((byte)(k + 1), g.Ram.Span(0x21F00 + (ulong)k, 1)[0]);
    }

    [DifferentialTheory]
    [InlineData(64, false)]
    [InlineData(64, true)]
    [InlineData(32, false)]
    [InlineData(32, true)]
    public void Rep_movs_and_stos_over_ram_pages_both_directions(int bits, bool down)
    {
        // Several pages (bulk chunks), a misaligned start (elements crossing pages take the element path), overlapping
        // ranges (element order), and a count ending inside a page.
        foreach (var (body, size, rcx, rsi, rdi) in new (Action<Assembler>, int, ulong, ulong, ulong)[]
        {
            (a => a.rep.movsb(), 1, 9000, 0x14003, 0x16801),
            (a => a.rep.movsd(), 4, 2000, 0x14002, 0x16806),
            (a => a.rep.movsb(), 1, 3000, 0x15000, 0x15001),   // overlap, destination above: element order replicates the pattern going up
            (a => a.rep.movsq(), 8, 500, 0x15008, 0x15000),    // destination below the source
            (a => a.rep.movsw(), 2, 700, 0x15000, 0x15003),    // overlap by less than an element
            (a => a.rep.stosq(), 8, 1500, 0, 0x14005),
            (a => a.rep.stosw(), 2, 3000, 0, 0x15ffe),
        })
        {
            // Going down, the same ranges mirrored in the window.
            ulong Mirror(ulong x) => down && x != 0 ? 2 * Window + WindowLength - x - (ulong)size : x;
            if (bits == 32 && size == 8) continue;
            var (_, t1) = Both(Asm(bits, body), Input(rcx, Mirror(rsi), Mirror(rdi), down: down), bits);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
            Assert.Equal(0UL, t1.Gpr[1]);
        }
    }

    [DifferentialFact]
    public void Rep_stos_ending_past_ram_goes_to_the_bus_element_by_element()
    {
        // RAM ends at a MiB boundary above the native runner's region: the last 16 bytes of RAM, then 48 bytes of bus.
        ulong end = DiffHarness.NewRamSize;
        var code = Asm(64, a => a.rep.stosb());
        var (_, t1) = Both(code, Input(64, 0, end - 16, rax: 0x5A), 64, memory: end - 64, length: 64);
        Assert.Equal(ExitReason.Hlt, t1.Exit);
        Assert.Equal(end + 48, t1.Gpr[7]);
        Assert.Equal(Enumerable.Repeat((byte)0x5A, 16), t1.Memory[48..]);
    }

    [DifferentialTheory]
    [InlineData(64)]
    [InlineData(32)]
    public void Rep_stos_over_the_following_code_is_seen_by_it(int bits)
    {
        // rep stosb rewrites the imm32 of the MOV after it (same block) with 0x07 bytes: EAX must be 0x07070707.
        byte[] probe = Asm(bits, a => { a.rep.stosb(); a.mov(eax, 0x1234_5678); });
        ulong imm = Rip + (ulong)probe.Length - 4;
        var (_, t1) = Both(probe, Input(4, 0, imm, rax: 0x07), bits, memory: Rip, length: probe.Length);
        Assert.Equal(ExitReason.Hlt, t1.Exit);
        Assert.Equal(0x0707_0707UL, t1.Gpr[0]);
    }

    [DifferentialTheory]
    [InlineData(64)]
    [InlineData(32)]
    public void Lods_cmps_scas_with_and_without_rep_run_inline(int bits)
    {
        var code = Asm(bits, a =>
        {
            a.lodsb(); a.lodsd(); a.cmpsw(); a.scasb();
            a.repe.cmpsb(); a.mov(ebx, ecx); a.mov(ecx, 40); a.repne.scasb(); a.mov(edx, ecx); a.mov(ecx, 8); a.rep.lodsw();
        });
        foreach (bool down in new[] { false, true })
        {
            var (_, t1) = Both(code, Input(20, 0x11000, 0x11000, rax: 0x63, down: down), bits);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
        }
    }
}
