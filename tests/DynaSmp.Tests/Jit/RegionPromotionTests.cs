using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>Lean regions and their promotion (BlockTranslator.FormRegion, TierUp.Promote): a head's first region leaves
/// out blocks that have code of their own, and a region entered <see cref="CompiledBlock.PromoteAfter"/> times is
/// compiled again with them, so a loop split across regions ends up in one method, computing the same result.</summary>
public unsafe class RegionPromotionTests
{
    const ulong Code = 0x10_000;

    /// <summary>A loop of three blocks (L: add, test, jz M; add 3; M: dec, jnz L) run <paramref name="n"/> times after a
    /// one-block prologue. Compiled first (threshold 1), each block is compiled as soon as it is decoded, so each first
    /// region is the block alone and the loop runs across chained regions until L is promoted.</summary>
    sealed class Guest : IDisposable
    {
        public readonly GuestRam Ram = new(1 << 20);
        public readonly BlockCache Cache;
        public readonly CpuCore Cpu;
        public ulong LoopHead;

        public Guest()
        {
            var a = new Assembler(64);
            var l = a.CreateLabel(); var m = a.CreateLabel();
            a.xor(eax, eax);
            a.jmp(l);
            a.Label(ref l);
            a.add(eax, ecx);
            a.test(ecx, 1);
            a.jz(m);
            a.add(eax, 3);
            a.Label(ref m);
            a.dec(ecx);
            a.jnz(l);
            a.hlt();
            var bytes = CodeBytes.Assemble(a, Code);
            Ram.Write(Code, bytes);
            LoopHead = Code + 4; // xor eax,eax (2 bytes) + jmp short (2 bytes)
            Cache = new BlockCache(Ram);
            Cpu = new CpuCore(Ram, EmptyBus.Instance, Cache, JitOptions.CompileFirst);
        }

        public uint Run(uint n)
        {
            Cpu.SetFlat64(Code, 0x8000);
            Cpu.State->Gpr[1] = n;
            Assert.Equal(ExitReason.Hlt, Cpu.Run(100_000_000));
            return (uint)Cpu.State->Gpr[0];
        }

        public CompiledBlock? Compiled(ulong rip) => Cache.Find(rip, Cpu.State->Mode, 0, rip)?.Compiled;

        public void Dispose() { Cpu.Dispose(); Ram.Dispose(); }
    }

    static uint Expected(uint n)
    {
        uint eax = 0;
        for (uint ecx = n; ecx != 0; ecx--) eax += ecx + ((ecx & 1) != 0 ? 3u : 0u);
        return eax;
    }

    [Fact]
    public void The_compile_queue_ranks_by_interpretations_since_queueing_and_a_promotion_at_one_threshold()
    {
        using var g = new Guest();
        var waiting = new Block(Code, 0, Code, ExecMode.Code64, [], Code, ulong.MaxValue) { ExecCount = 1500, QueuedAtCount = 1000 };
        Assert.Equal(500, TierUp.Rank((g.Cpu, waiting)));
        waiting.Invalid = true; // nothing left to compile: out of the way first
        Assert.Equal(long.MaxValue, TierUp.Rank((g.Cpu, waiting)));

        Assert.Equal(Expected(5), g.Run(5));
        Assert.Equal(Expected(5), g.Run(5));
        var head = g.Cache.Find(g.LoopHead, g.Cpu.State->Mode, 0, g.LoopHead)!;
        Assert.True(head.Compiled!.Code.Counted);
        Assert.Equal(long.MaxValue, TierUp.Rank((g.Cpu, head))); // compiled, not promoted: nothing to do
        head.FullRegion = true;
        Assert.Equal(g.Cpu.Options.TierUpThreshold, TierUp.Rank((g.Cpu, head)));
        Assert.False(TierUp.Release((g.Cpu, head))); // a promotion stays queued, however cold

        var cold = new Block(Code, 0, Code, ExecMode.Code64, [], Code, ulong.MaxValue) { ExecCount = 100, QueuedAtCount = 100, TierUpQueued = 1 };
        Assert.True(TierUp.Release((g.Cpu, cold)));
        Assert.Equal(0, cold.ExecCount);    // counts again from zero,
        Assert.Equal(0, cold.TierUpQueued); // and is queued again at the threshold
    }

    [Fact]
    public void A_first_region_leaves_out_blocks_compiled_on_their_own_and_counts_its_entries()
    {
        using var g = new Guest();
        Assert.Equal(Expected(5), g.Run(5));
        Assert.Equal(Expected(5), g.Run(5)); // every block decoded and compiled now
        var head = g.Compiled(g.LoopHead)!;
        Assert.True(head.Code.Counted);
        Assert.Equal(1, head.RegionBlocks); // its successors were compiled before it could take them in
        Assert.InRange((long)head.Slots[-1], 1, CompiledBlock.PromoteAfter - 1); // entries counted down, not yet out
    }

    [Fact]
    public void A_loop_split_across_lean_regions_is_promoted_into_one_full_region_with_the_same_result()
    {
        using var g = new Guest();
        Assert.Equal(Expected(3), g.Run(3));
        uint n = (uint)CompiledBlock.PromoteAfter * 3;
        Assert.Equal(Expected(n), g.Run(n));
        var block = g.Cache.Find(g.LoopHead, g.Cpu.State->Mode, 0, g.LoopHead)!;
        Assert.True(block.FullRegion);
        var full = block.Compiled!;
        Assert.False(full.Code.Counted);
        Assert.True(full.RegionBlocks >= 3, $"region of {full.RegionBlocks} blocks"); // L, the add-3 block and M
        Assert.Equal(Expected(n), g.Run(n)); // and the full code computes what the lean code did
        using var interpreted = new Guest();
        var tier0 = new CpuCore(interpreted.Ram, EmptyBus.Instance, new BlockCache(interpreted.Ram), JitOptions.InterpretOnly);
        tier0.SetFlat64(Code, 0x8000);
        tier0.State->Gpr[1] = n;
        Assert.Equal(ExitReason.Hlt, tier0.Run(100_000_000));
        Assert.Equal((uint)tier0.State->Gpr[0], g.Run(n));
        Assert.Equal(tier0.State->Rflags & 0x8D5, g.Cpu.State->Rflags & 0x8D5); // OF SF ZF AF PF CF of the last DEC
        tier0.Dispose();
    }
}
