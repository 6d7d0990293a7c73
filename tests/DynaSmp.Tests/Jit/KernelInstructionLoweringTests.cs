using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>PUSHF, MOV r/m from a segment register, CLI and RDTSC/RDTSCP are lowered in tier 1 (a kernel runs them
/// constantly): tier 1 must end exactly as tier 0 does, faults included, without a tier-0 call for them.</summary>
public sealed unsafe class KernelInstructionLoweringTests
{
    sealed record Outcome(ExitReason Exit, int Vector, ulong Rip, ulong[] Gpr, ulong Flags, ulong Stack, string[] TierZeroCalls);

    static Outcome Run(Action<Assembler> body, JitOptions options, Action<CpuCore>? setup = null, int bits = 64)
    {
        var a = new Assembler(bits);
        body(a);
        a.hlt();
        using var ram = new GuestRam(4 << 20);
        ram.Write(0x1000, CodeBytes.Assemble(a, 0x1000));
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        if (bits == 64) cpu.SetFlat64(0x1000, 0x8000); else cpu.SetFlat32(0x1000, 0x8000);
        for (int r = 0; r < 16; r++) if (r != 4) cpu.Gpr(r) = 0xA5A5_0000_0000_0000UL | (uint)(r * 0x1111);
        setup?.Invoke(cpu);
        var exit = cpu.Run(100_000);
        var gpr = new ulong[16];
        for (int r = 0; r < 16; r++) gpr[r] = cpu.Gpr(r);
        ulong stack = BitConverter.ToUInt64(ram.Span(0x7FF0, 8));
        string[] calls = options.ProfileFallbacks ? [.. CompiledCode.TierZeroCallForms(cpu)] : [];
        return new(exit, exit == ExitReason.Exception ? cpu.ExitVector : -1, cpu.State->Rip, gpr, Flags.Get(cpu.State), stack, calls);
    }

    static readonly JitOptions Tier1 = new() { TierUpThreshold = 1, CompileSynchronously = true, ProfileFallbacks = true };

    static void AssertSame(Action<Assembler> body, Action<CpuCore>? setup = null, int bits = 64, params string[] lowered)
    {
        var t0 = Run(body, JitOptions.InterpretOnly, setup, bits);
        var t1 = Run(body, Tier1, setup, bits);
        foreach (var form in lowered) Assert.DoesNotContain(form, t1.TierZeroCalls);
        Assert.Equal((t0.Exit, t0.Vector, t0.Rip), (t1.Exit, t1.Vector, t1.Rip));
        Assert.Equal(t0.Gpr, t1.Gpr);
        Assert.Equal(t0.Flags, t1.Flags);
        Assert.Equal(t0.Stack, t1.Stack);
    }

    [Fact]
    public void Pushf_pushes_the_pending_flags_with_vm_and_rf_clear()
    {
        AssertSame(a =>
        {
            a.mov(eax, 0x7FFF_FFFF); a.add(eax, 1); // OF, SF, AF, PF pending as a record
            a.pushfq(); a.pop(rbx);
            a.stc(); a.pushfq(); a.pop(rcx);
            a.db(0x66); a.pushfq(); a.pop(dx);  // PUSHF with 16-bit operand size: 2 bytes
            a.sub(rsp, 8); a.pushfq(); a.add(rsp, 16);
        }, lowered: ["Pushfq"]);
        AssertSame(a => { a.cmp(eax, ebx); a.pushfd(); a.pop(esi); a.pushfd(); }, bits: 32, lowered: ["Pushfd"]);
    }

    [Fact]
    public void Mov_from_a_segment_register_zero_extends_or_merges_as_tier_0()
    {
        AssertSame(a =>
        {
            a.mov(eax, ds); a.mov(bx, es); a.mov(rcx, ss); a.mov(edx, fs); a.mov(si, gs); a.mov(edi, cs);
            a.mov(__word_ptr[rsp - 16], ds); a.mov(__word_ptr[0x7FF0], ss);
        }, DistinctSelectors, lowered: ["Mov_r32m16_Sreg", "Mov_r64m16_Sreg"]);
        AssertSame(a => { a.mov(eax, ds); a.mov(bx, ss); a.mov(__word_ptr[0x7FF0], cs); }, DistinctSelectors, bits: 32, lowered: ["Mov_r32m16_Sreg"]);
    }

    // Every segment register a different selector (the caches keep their flat bases and limits), so a read of the wrong
    // one shows.
    static void DistinctSelectors(CpuCore c)
    {
        c.State->Es.Selector = 0x18; c.State->Ss.Selector = 0x20; c.State->Ds.Selector = 0x28;
        c.State->Fs.Selector = 0x33; c.State->Gs.Selector = 0x3B;
    }

    static void User(CpuCore c, ulong iopl)
    {
        // CPL 3 (CS.RPL = 3) with the given IOPL; exceptions are intercepted, so the fault ends the run.
        c.State->Cs.Selector |= 3;
        c.State->Ss.Selector |= 3;
        c.State->Rflags = (c.State->Rflags & ~0x3000UL) | (iopl << 12) | RFlags.IF;
        c.UpdateMode();
    }

    [Fact]
    public void Cli_clears_if_or_raises_gp_when_cpl_is_above_iopl()
    {
        AssertSame(a => { a.add(eax, ebx); a.cli(); a.pushfq(); a.pop(rcx); }, c => c.State->Rflags |= RFlags.IF, lowered: ["Cli"]);
        AssertSame(a => { a.add(eax, ebx); a.cli(); a.mov(ecx, 5); }, c => User(c, iopl: 3), lowered: ["Cli"]);
        var fault = Run(a => { a.add(eax, ebx); a.cli(); a.mov(ecx, 5); }, Tier1, c => User(c, iopl: 0));
        Assert.Equal((ExitReason.Exception, Vector.GP, 0x1002UL), (fault.Exit, fault.Vector, fault.Rip));
        AssertSame(a => { a.add(eax, ebx); a.cli(); a.mov(ecx, 5); }, c => User(c, iopl: 0));
    }

    [Fact]
    public void Rdtsc_splits_the_tsc_into_edx_eax_and_faults_under_cr4_tsd_above_cpl_0()
    {
        static void Body(Assembler a)
        {
            a.rdtsc(); a.mov(r8, rax); a.mov(r9, rdx);
            a.rdtscp(); a.mov(r10, rax); a.mov(r11, rdx); a.mov(r12, rcx);
        }
        var t1 = Run(Body, Tier1, c => c.State->TscAux = 0x1_0000_1234);
        Assert.DoesNotContain("Rdtsc", t1.TierZeroCalls);
        Assert.DoesNotContain("Rdtscp", t1.TierZeroCalls);
        Assert.True(t1.Gpr[8] <= uint.MaxValue && t1.Gpr[9] <= uint.MaxValue, "EAX and EDX are zero-extended halves");
        Assert.True(((t1.Gpr[11] << 32) | t1.Gpr[10]) >= ((t1.Gpr[9] << 32) | t1.Gpr[8]), "the TSC does not go back");
        Assert.Equal(0x1234UL, t1.Gpr[12]); // ECX = IA32_TSC_AUX[31:0]
        // CR4.TSD: CPL 3 faults (before EDX:EAX change), CPL 0 reads on.
        foreach (var opts in new[] { JitOptions.InterpretOnly, Tier1 })
        {
            var fault = Run(a => { a.mov(eax, 7); a.rdtsc(); }, opts, c => { c.State->Cr4 |= Cr4.TSD; User(c, iopl: 0); });
            Assert.Equal((ExitReason.Exception, Vector.GP, 0x1005UL, 7UL), (fault.Exit, fault.Vector, fault.Rip, fault.Gpr[0]));
            var kernel = Run(a => { a.mov(eax, 7); a.rdtsc(); }, opts, c => c.State->Cr4 |= Cr4.TSD);
            Assert.Equal(ExitReason.Hlt, kernel.Exit);
        }
    }
}
