using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Jit;

/// <summary>The per-vCPU jump cache: a hit needs the same RIP, mode and CS base and a valid block; it starts small and
/// grows once, after twice its size in fills, so a vCPU that runs a few dozen blocks never pays for the full table.</summary>
public sealed class JumpCacheTests
{
    static Block At(ulong rip, ExecMode mode = ExecMode.Code64, ulong csBase = 0) => new(rip, csBase, rip, mode, [Instruction.Create(Code.Nopd)], rip >> 12, rip >> 12);

    [Fact]
    public void A_hit_needs_the_same_rip_mode_and_code_segment_and_a_valid_block()
    {
        var cache = new JumpCache();
        var b = At(0x1000);
        cache.Fill(0x1000, b);
        Assert.Same(b, cache.Probe(0x1000, ExecMode.Code64, 0));
        Assert.Null(cache.Probe(0x1000, ExecMode.Code32, 0));
        Assert.Null(cache.Probe(0x1000, ExecMode.Code64, 0x10));
        Assert.Null(cache.Probe(0x1000 + (ulong)JumpCache.InitialEntries * 0x1001, ExecMode.Code64, 0)); // another RIP, maybe the same slot
        b.Invalid = true;
        Assert.Null(cache.Probe(0x1000, ExecMode.Code64, 0));
        var c = At(0x2000);
        cache.Fill(0x2000, c);
        cache.Flush();
        Assert.Null(cache.Probe(0x2000, ExecMode.Code64, 0));
    }

    [Fact]
    public void It_grows_once_after_twice_its_size_in_fills()
    {
        var cache = new JumpCache();
        Assert.Equal(JumpCache.InitialEntries, cache.Capacity);
        for (ulong k = 0; k < 2 * JumpCache.InitialEntries; k++) cache.Fill(0x10_0000 + k * 16, At(0x10_0000 + k * 16));
        Assert.Equal(JumpCache.InitialEntries, cache.Capacity);
        var last = At(0x40_0000);
        cache.Fill(0x40_0000, last);
        Assert.Equal(JumpCache.MaxEntries, cache.Capacity);
        Assert.Same(last, cache.Probe(0x40_0000, ExecMode.Code64, 0));
        for (ulong k = 0; k < 4 * JumpCache.MaxEntries; k++) cache.Fill(k * 16, At(k * 16));
        Assert.Equal(JumpCache.MaxEntries, cache.Capacity);
    }
}
