using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>The SSE3/SSE4 instructions run as tier-0 calls from translated code (and in the interpreter) without
/// allocating: no boxing, no strings from mnemonic names, no arrays per execution. The SSE2 arithmetic sits in the
/// same loop, since it shares the lane helpers.</summary>
public class Sse4AllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_warm_sse4_loop_allocates_nothing(bool compiled)
    {
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        a.Label(ref loop);
        a.pmovsxbw(xmm1, xmm2);
        a.pmovzxdq(xmm3, __qword_ptr[rdi]);
        a.pcmpistri(xmm1, xmm2, 0x0C);
        a.pcmpestrm(xmm3, __xmmword_ptr[rdi], 0x48);
        a.crc32(rax, rbx);
        a.roundpd(xmm4, xmm5, 0x0B);
        a.dpps(xmm6, xmm7, 0xF1);
        a.haddps(xmm6, xmm4);
        a.ptest(xmm1, xmm3);
        a.insertps(xmm2, xmm6, 0x5A);
        a.pextrb(edx, xmm1, 5);
        a.pinsrd(xmm5, edx, 2);
        a.blendvps(xmm7, xmm1);
        a.mpsadbw(xmm1, xmm2, 5);
        a.phminposuw(xmm3, xmm1);
        a.movddup(xmm4, xmm2);
        // SSE2 arithmetic through the same tier-0 path (SseArith), where tier 1's fast path does not take it.
        a.addps(xmm8, xmm9);
        a.cmpps(xmm8, xmm10, 1);
        a.minsd(xmm9, xmm10);
        a.sqrtss(xmm11, xmm9);
        a.divpd(xmm12, xmm13);
        a.dec(rsi);
        a.jnz(loop);
        a.hlt();
        var code = CodeBytes.Assemble(a, 0x1000);
        using var ram = new GuestRam(1 << 20);
        ram.Write(0x1000, code);
        var options = compiled ? new JitOptions { CompileSynchronously = true } : JitOptions.InterpretOnly;
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);

        bool Run(ulong n)
        {
            cpu.SetFlat64(0x1000, 0x8000);
            cpu.Gpr(7) = 0x2000;
            cpu.Gpr(6) = n;
            return cpu.Run() == ExitReason.Hlt; // no Assert inside the measured region: xunit's assertions allocate
        }

        for (int k = 0; k < 60; k++) Run(2_000);
        long allocated = long.MaxValue;
        bool halted = true;
        for (int window = 0; window < 3 && allocated != 0; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            halted &= Run(100_000);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.True(halted, cpu.ExitMessage);
        if (compiled) Assert.True(cpu.CompiledBlockEntries > 0);
        Assert.Equal(0, allocated);
    }
}
