using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SseInsns;

/// <summary>Tier 1 lowers the packed integer instructions: compiled code that runs them makes no tier-0 call (their
/// results are checked against the host by <see cref="SseBinaryOracleTests"/>, <see cref="SseImmediateOracleTests"/>
/// and the SSSE3 differential group, in both tiers).</summary>
public sealed unsafe class SseIntegerTierTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(32)]
    public void Packed_integer_forms_run_without_tier_zero_calls(int bits)
    {
        var a = new Assembler(bits);
        var mem = bits == 64 ? __xmmword_ptr[rax] : __xmmword_ptr[eax];
        a.paddd(xmm1, xmm2); a.psubq(xmm1, mem); a.pcmpeqb(xmm3, xmm1); a.pmuludq(xmm3, xmm2);
        a.pshufd(xmm4, xmm1, 0x1B); a.pshufb(xmm4, xmm3); a.punpckldq(xmm5, mem); a.packuswb(xmm5, xmm4);
        a.pslld(xmm5, 7); a.psrlq(xmm5, xmm2); a.psrldq(xmm5, 3); a.palignr(xmm5, xmm1, 5);
        Assert.Equal(["Hlt"], TierZeroCalls(a, bits));
    }

    /// <summary>MOVSD and CMPSD share their mnemonics with the string instructions: the table entry that serves both
    /// must keep the SSE forms lowered (it once dropped their XMM flag, and nbody-32 ran 5x slower).</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(32)]
    public void Sse_forms_sharing_a_string_mnemonic_stay_lowered(int bits)
    {
        var a = new Assembler(bits);
        var mem = bits == 64 ? __qword_ptr[rax] : __qword_ptr[eax];
        a.movsd(xmm1, xmm2); a.movsd(xmm3, mem); a.movsd(mem, xmm1); a.cmpsd(xmm1, xmm2, 0);
        Assert.Equal(["Hlt"], TierZeroCalls(a, bits));
    }

    static List<string> TierZeroCalls(Assembler a, int bits)
    {
        a.hlt();
        using var ram = new GuestRam(1 << 20);
        ram.Write(0x1000, CodeBytes.Assemble(a, 0x1000));
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), JitOptions.CompileFirst with { ProfileFallbacks = true });
        if (bits == 64) cpu.SetFlat64(0x1000, 0x8000); else cpu.SetFlat32(0x1000, 0x8000);
        cpu.State->Gpr[0] = 0x10000;
        Assert.Equal(ExitReason.Hlt, cpu.Run(1000));
        Assert.True(cpu.CompiledBlockEntries > 0, "the block was not compiled");
        return DynaSmp.Tests.Jit.CompiledCode.TierZeroCallForms(cpu);
    }
}
