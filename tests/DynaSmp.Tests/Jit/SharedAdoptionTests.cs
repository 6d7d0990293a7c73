using DynaSmp.Jit;
using DynaSmp.Jit.Translation;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>TierUp.AdoptShared: a VM whose block reaches <see cref="TierUp.SharedProbeAt"/> interpretations takes the
/// translation another VM already made of the same instructions, long before its own tier-up threshold.</summary>
public class SharedAdoptionTests
{
    /// <summary>A counting loop; <paramref name="tag"/> makes its bytes this test's own, so no other test shares them.</summary>
    static Action<Assembler> Loop(uint tag, uint iterations) => a =>
    {
        var top = a.CreateLabel();
        a.xor(eax, eax);
        a.mov(ecx, iterations);
        a.Label(ref top);
        a.add(eax, tag);
        a.dec(ecx);
        a.jnz(top);
        a.hlt();
    };

    static Guest Make(JitOptions options, Action<Assembler> program) => Guest.Flat64(Tiers.Tiered, program, options: options);

    [Fact]
    public void A_second_vm_runs_the_first_vms_translation_before_its_own_threshold()
    {
        uint tag = (uint)Random.Shared.Next(1 << 20, int.MaxValue);
        // The first VM compiles the loop (synchronously, at its 1,000th interpretation) into the process-wide table.
        using (var first = Make(new JitOptions { TierUpThreshold = 1000, CompileSynchronously = true }, Loop(tag, 5000)))
        {
            first.RunToHlt();
            Assert.True(first.Cpu.CompiledBlockEntries > 0);
        }
        long adoptedBefore = Interlocked.Read(ref TierUp.SharedAdopted);
        // The second runs it 200 times: never near its threshold, so only adopted code can be entered.
        using var second = Make(new JitOptions { TierUpThreshold = 1000 }, Loop(tag, 200));
        second.RunToHlt();
        Assert.Equal(unchecked((ulong)(uint)(tag * 200)), second.Reg(R.Ax));
        Assert.True(second.Cpu.CompiledBlockEntries > 0, "the second VM never entered compiled code");
        Assert.True(second.Cpu.InterpretedBlocks < 200, $"interpreted {second.Cpu.InterpretedBlocks} blocks");
        Assert.True(Interlocked.Read(ref TierUp.SharedAdopted) > adoptedBefore);
    }

    [Fact]
    public void Without_a_shared_translation_the_threshold_applies()
    {
        uint tag = (uint)Random.Shared.Next(1 << 20, int.MaxValue);
        using var only = Make(new JitOptions { TierUpThreshold = 1000 }, Loop(tag, 200));
        only.RunToHlt();
        Assert.Equal(unchecked((ulong)(uint)(tag * 200)), only.Reg(R.Ax));
        Assert.Equal(0, only.Cpu.CompiledBlockEntries);
    }

    /// <summary>Probing is pointless until some other address space has compiled into the table: alone, a VM would only
    /// find its own code.</summary>
    [Fact]
    public void Probes_wait_for_a_second_contributor()
    {
        var c = new TranslationContributors();
        Assert.False(c.HoldsOthersThan(1));
        c.Note(1);
        Assert.False(c.HoldsOthersThan(1)); // only its own code
        Assert.True(c.HoldsOthersThan(2));  // a VM started later can take VM 1's
        c.Note(1);
        Assert.False(c.HoldsOthersThan(1));
        c.Note(2);
        Assert.True(c.HoldsOthersThan(1));  // now VM 1 can take VM 2's
        Assert.True(c.HoldsOthersThan(2));
    }
}
