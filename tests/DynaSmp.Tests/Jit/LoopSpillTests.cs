using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>A loop compiled in one method stores its guest registers, pending flag record and retired count
/// to CpuState around every slow-path call (TLB miss, tier-0 call) and reloads them after it. A loop whose every
/// access misses the TLB must end exactly as tier 0 ends it: registers, flags, memory and the retired count.</summary>
public unsafe class LoopSpillTests
{
    // Two pages 1 MiB apart share a TLB entry ((linear >> 12) mod 256), so alternating between them misses every time.
    const ulong PageA = 0x10_0000, PageB = 0x20_0000;

    static byte[] MissingLoop()
    {
        var a = new Assembler(64);
        Label loop = a.CreateLabel();
        a.mov(rsi, PageA);
        a.mov(rdi, PageB);
        a.xor(r8d, r8d);
        a.xor(r9d, r9d);
        a.Label(ref loop);
        a.add(eax, 0x7000_0001);           // flags pending across the loads below (they can fault: all flags live)
        a.mov(ebx, __dword_ptr[rsi + rcx * 4]); // read TLB: page A ...
        a.mov(edx, __dword_ptr[rdi + rcx * 4]); // ... then page B, evicting A
        a.adc(r8, rbx);                    // reads CF of the ADD through both slow paths
        a.mov(__dword_ptr[rsi + rcx * 4 + 0x800], edx); // write TLB: page A ...
        a.mov(__dword_ptr[rdi + rcx * 4 + 0x800], eax); // ... and page B
        a.pushfq();                        // RFLAGS with the pending record materialised ...
        a.pop(r10);
        a.add(r9, r10);
        a.smsw(r10d);                      // ... and a tier-0 call inside the loop
        a.add(r9, r10);
        a.sub(eax, edx);                   // flags pending across the back edge and the next iteration's misses
        a.inc(rcx);
        a.cmp(rcx, 300);
        a.jb(loop);
        a.setc(r11b);
        a.setz(r12b);
        a.hlt();
        return CodeBytes.Assemble(a, 0x1000);
    }

    sealed record Outcome(ulong[] Gpr, ulong Flags, ulong Retired, byte[] PageA, byte[] PageB, string[] TierZeroCalls);

    static Outcome Run(JitOptions options)
    {
        using var ram = new GuestRam(4 << 20);
        ram.Write(0x1000, MissingLoop());
        var seed = new byte[0x1000];
        for (int k = 0; k < seed.Length; k++) seed[k] = (byte)(k * 37 + 11);
        ram.Write(PageA, seed);
        ram.Write(PageB, seed.Reverse().ToArray());
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        cpu.SetFlat64(0x1000, 0x8000);
        cpu.Gpr(0) = 0x1234_5678;
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        var gpr = new ulong[16];
        for (int r = 0; r < 16; r++) gpr[r] = cpu.Gpr(r);
        var a = new byte[0x1000]; var b = new byte[0x1000];
        ram.Span(PageA, a.Length).CopyTo(a); ram.Span(PageB, b.Length).CopyTo(b);
        string[] calls = options.ProfileFallbacks ? [.. CompiledCode.TierZeroCallForms(cpu)] : [];
        return new(gpr, Flags.Get(cpu.State), cpu.State->InstructionsRetired, a, b, calls);
    }

    [Fact]
    public void Loop_whose_accesses_all_miss_the_tlb_ends_as_in_tier_0()
    {
        var interpreted = Run(JitOptions.InterpretOnly);
        var compiled = Run(new JitOptions { TierUpThreshold = 1, CompileSynchronously = true, ProfileFallbacks = true });

        Assert.Contains("Smsw_r32m16", compiled.TierZeroCalls); // the loop ran compiled, with its tier-0 call
        Assert.Equal(interpreted.Gpr, compiled.Gpr);
        Assert.Equal(interpreted.Flags & 0x8D5, compiled.Flags & 0x8D5);
        Assert.Equal(interpreted.Retired, compiled.Retired);
        Assert.Equal(interpreted.PageA, compiled.PageA);
        Assert.Equal(interpreted.PageB, compiled.PageB);
        Assert.NotEqual(0UL, interpreted.Gpr[8]); // the loop did real work
    }
}
