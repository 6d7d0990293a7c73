using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>Prefetch hints and ENDBR are lowered as nothing: compiled code makes no tier-0 call for them and, as tier 0
/// and the hardware, never faults on a prefetch's address (SDM Vol. 2B PREFETCHh: no exceptions but #UD for LOCK).</summary>
public sealed unsafe class HintLoweringTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Prefetches_of_wild_addresses_do_nothing_in_either_tier(int tier)
    {
        var a = new Assembler(64);
        a.prefetcht0(__byte_ptr[rax]); a.prefetchnta(__byte_ptr[rax + 64]); a.prefetchw(__byte_ptr[rax + 128]); a.endbr64();
        a.add(ebx, 1);
        a.hlt();
        using var ram = new GuestRam(1 << 20);
        ram.Write(0x1000, CodeBytes.Assemble(a, 0x1000));
        var options = (tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst) with { ProfileFallbacks = true };
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        cpu.SetFlat64(0x1000, 0x8000);
        cpu.State->Gpr[0] = 0x7FFF_0000_0000; // far outside guest RAM
        Assert.Equal(ExitReason.Hlt, cpu.Run(1000));
        Assert.Equal(1UL, cpu.State->Gpr[3]);
        if (tier == 1) Assert.Equal(["Hlt"], CompiledCode.TierZeroCallForms(cpu));
    }
}
