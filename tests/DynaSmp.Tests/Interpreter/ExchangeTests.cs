using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2A "CMPXCHG", "CMPXCHG8B/CMPXCHG16B", and Vol. 2B "XADD".
public unsafe class ExchangeTests
{
    [Theory, InlineData(0, false), InlineData(1, false), InlineData(0, true), InlineData(1, true)]
    public void Cmpxchg_memory_success_and_failure(int tier, bool locked)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            if (locked) a.@lock.cmpxchg(__dword_ptr[0x2000], ecx); else a.cmpxchg(__dword_ptr[0x2000], ecx);
            a.setz(r8b);
            a.mov(rdi, rax);
            if (locked) a.@lock.cmpxchg(__dword_ptr[0x2004], ecx); else a.cmpxchg(__dword_ptr[0x2004], ecx);
        }, h =>
        {
            h[0] = 0xAAAA_AAAA_0000_0005; h[1] = 7; h.Poke(0x2000, 5, 4); h.Poke(0x2004, 9, 4);
        });
        h.AssertHalted();
        Assert.Equal(7UL, h.Peek(0x2000, 4));
        Assert.Equal(1UL, h[8]);
        Assert.Equal(0xAAAA_AAAA_0000_0005UL, h[7]); // success: the accumulator is not written
        Assert.Equal(9UL, h.Peek(0x2004, 4));
        Assert.Equal(9UL, h[0]);                     // failure: EAX <- destination, zero-extended
        // CMP 5, 9: CF = 1, SF = 1, ZF = 0.
        Assert.Equal(F.CF | F.SF, h.Status & (F.CF | F.SF | F.ZF | F.OF));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cmpxchg_register_byte_and_failure_leaves_destination(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.cmpxchg(bl, cl); a.mov(r8, rbx); a.cmpxchg(esi, edx); }, h =>
        {
            h[0] = 0x42; h[3] = 0x42; h[1] = 0x99; h[6] = 0xFFFF_FFFF_0000_0001; h[2] = 3;
        });
        h.AssertHalted();
        Assert.Equal(0x99UL, h[8]);
        Assert.Equal(0xFFFF_FFFF_0000_0001UL, h[6]);
        Assert.Equal(1UL, h[0]);
        Assert.Equal(0UL, h.Status & F.ZF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Xadd_exchanges_and_adds(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.@lock.xadd(__qword_ptr[0x2000], rcx); a.xadd(ax, ax); a.xadd(dl, bl); }, h =>
        {
            h.Poke(0x2000, 10, 8); h[1] = 3; h[0] = 5; h[2] = 0xFF; h[3] = 0x01;
        });
        h.AssertHalted();
        Assert.Equal(13UL, h.Peek(0x2000, 8));
        Assert.Equal(10UL, h[1]);
        Assert.Equal(10UL, h[0]);
        Assert.Equal(0x00UL, h[2]);
        Assert.Equal(0xFFUL, h[3]);
        Assert.Equal(F.CF | F.ZF | F.AF | F.PF, h.Status & (F.CF | F.ZF | F.AF | F.PF | F.SF | F.OF));
    }

    [Theory, InlineData(0, false), InlineData(1, false), InlineData(0, true), InlineData(1, true)]
    public void Cmpxchg8b(int tier, bool locked)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            if (locked) a.@lock.cmpxchg8b(__qword_ptr[0x2000]); else a.cmpxchg8b(__qword_ptr[0x2000]);
            a.setz(r8b);
            if (locked) a.@lock.cmpxchg8b(__qword_ptr[0x2008]); else a.cmpxchg8b(__qword_ptr[0x2008]);
        }, h =>
        {
            h.Poke(0x2000, 0x1111_1111_2222_2222, 8); h.Poke(0x2008, 0x5555_5555_6666_6666, 8);
            h[2] = 0xFFFF_FFFF_1111_1111; h[0] = 0xFFFF_FFFF_2222_2222; h[1] = 0x3333_3333; h[3] = 0x4444_4444;
        });
        h.AssertHalted();
        Assert.Equal(0x3333_3333_4444_4444UL, h.Peek(0x2000, 8));
        Assert.Equal(1UL, h[8]);
        Assert.Equal(0x5555_5555_6666_6666UL, h.Peek(0x2008, 8));
        Assert.Equal(0x5555_5555UL, h[2]); // failure: EDX:EAX loaded, upper halves cleared
        Assert.Equal(0x6666_6666UL, h[0]);
        Assert.Equal(0UL, h.Status & F.ZF);
    }

    [Theory, InlineData(0, false), InlineData(1, false), InlineData(0, true), InlineData(1, true)]
    public void Cmpxchg16b(int tier, bool locked)
    {
        using var h = GroupTestHost.Run(tier, 64, a =>
        {
            if (locked) a.@lock.cmpxchg16b(__xmmword_ptr[0x2000]); else a.cmpxchg16b(__xmmword_ptr[0x2000]);
            a.setz(r8b);
            if (locked) a.@lock.cmpxchg16b(__xmmword_ptr[0x2010]); else a.cmpxchg16b(__xmmword_ptr[0x2010]);
        }, h =>
        {
            h.Poke(0x2000, 1, 8); h.Poke(0x2008, 2, 8); h.Poke(0x2010, 5, 8); h.Poke(0x2018, 6, 8);
            h[0] = 1; h[2] = 2; h[3] = 3; h[1] = 4;
        });
        h.AssertHalted();
        Assert.Equal(3UL, h.Peek(0x2000, 8));
        Assert.Equal(4UL, h.Peek(0x2008, 8));
        Assert.Equal(1UL, h[8]);
        Assert.Equal(5UL, h.Peek(0x2010, 8));
        Assert.Equal(6UL, h.Peek(0x2018, 8));
        Assert.Equal(5UL, h[0]);
        Assert.Equal(6UL, h[2]);
        Assert.Equal(0UL, h.Status & F.ZF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cmpxchg16b_misaligned_raises_gp(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.nop(); a.@lock.cmpxchg16b(__xmmword_ptr[rsi]); },
            h => { h[6] = 0x2008; h[0] = 7; }, warmup: h => h[6] = 0x2000);
        h.AssertFault(Vector.GP, GroupTestHost.Code + 1);
        Assert.Equal(7UL, h[0]);
    }

    [Fact]
    public void Cmpxchg16b_native_and_locked_paths_agree()
    {
        ulong* mem = stackalloc ulong[4];
        byte* p = (byte*)(((nuint)mem + 15) & ~(nuint)15);
        ((ulong*)p)[0] = 10; ((ulong*)p)[1] = 20;
        ulong lo = 10, hi = 20;
        Assert.True(DynaSmp.Jit.Interpreter.Cmpxchg16bHost.CompareExchange(p, ref lo, ref hi, 30, 40));
        Assert.Equal(30UL, ((ulong*)p)[0]);
        Assert.Equal(40UL, ((ulong*)p)[1]);
        lo = 1; hi = 2;
        Assert.False(DynaSmp.Jit.Interpreter.Cmpxchg16bHost.CompareExchangeLocked(p, ref lo, ref hi, 0, 0));
        Assert.Equal(30UL, lo);
        Assert.Equal(40UL, hi);
    }

    /// <summary>Four vCPUs on four host threads, sharing RAM and the block cache, increment shared counters
    /// with LOCK XADD, LOCK CMPXCHG and LOCK CMPXCHG16B loops: any lost update shows in the totals.</summary>
    [Fact]
    public void Locked_read_modify_write_is_atomic_across_host_threads()
    {
        const int Threads = 4, Iterations = 20000;
        var a = new Assembler(64);
        Label top = a.CreateLabel(), retry = a.CreateLabel(), retry16 = a.CreateLabel();
        a.mov(r8d, Iterations);
        a.Label(ref top);
        a.mov(eax, 1);
        a.@lock.xadd(__qword_ptr[0x2000], rax);
        a.mov(rax, __qword_ptr[0x2008]);
        a.Label(ref retry);
        a.lea(rdx, __[rax + 1]);
        a.@lock.cmpxchg(__qword_ptr[0x2008], rdx);
        a.jnz(retry);
        a.mov(rax, __qword_ptr[0x2010]);
        a.mov(rdx, __qword_ptr[0x2018]);
        a.Label(ref retry16);
        a.lea(rbx, __[rax + 1]);
        a.lea(rcx, __[rdx + 1]);
        a.@lock.cmpxchg16b(__xmmword_ptr[0x2010]);
        a.jnz(retry16);
        a.dec(r8d);
        a.jnz(top);
        a.hlt();
        var code = CodeBytes.Assemble(a, GroupTestHost.Code);

        using var ram = new GuestRam(1 << 20);
        ram.Write(GroupTestHost.Code, code);
        var cache = new BlockCache(ram);
        var cpus = new CpuCore[Threads];
        var results = new ExitReason[Threads];
        var threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            cpus[t] = new CpuCore(ram, EmptyBus.Instance, cache, new JitOptions { TierUpThreshold = 2, CompileSynchronously = true });
            cpus[t].SetFlat64(GroupTestHost.Code, 0x10000 + 0x1000UL * (ulong)t);
            int k = t;
            threads[t] = new Thread(() => results[k] = cpus[k].Run());
        }
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var c in cpus) c.Dispose();
        Assert.All(results, r => Assert.Equal(ExitReason.Hlt, r));
        ulong expected = Threads * Iterations;
        var span = ram.Span(0x2000, 32);
        Assert.Equal(expected, BitConverter.ToUInt64(span[..8]));
        Assert.Equal(expected, BitConverter.ToUInt64(span[8..16]));
        Assert.Equal(expected, BitConverter.ToUInt64(span[16..24]));
        Assert.Equal(expected, BitConverter.ToUInt64(span[24..32]));
    }
}
