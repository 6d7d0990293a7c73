using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>CpuState.InstructionsRetired is exact in every tier: translated loops count in a local and add it
/// at their exits (including RETs that stay inside a region), and nothing is counted twice.</summary>
public unsafe class RetiredCountTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(100_000)]
    public void Call_loop_retires_the_same_count_in_every_tier(int iterations)
    {
        var a = new Assembler(64);
        Label fn = a.CreateLabel(), start = a.CreateLabel(), loop = a.CreateLabel(), odd = a.CreateLabel(), join = a.CreateLabel();
        a.jmp(start);
        a.Label(ref fn);
        a.add(rax, rcx);
        a.ret();
        a.Label(ref start);
        a.xor(ecx, ecx);
        a.Label(ref loop);
        a.inc(rcx);
        a.test(ecx, 1);
        a.jnz(odd);
        a.call(fn);
        a.jmp(join);
        a.Label(ref odd);
        a.sub(rax, 1);
        a.Label(ref join);
        a.cmp(rcx, rsi);
        a.jb(loop);
        a.hlt();
        byte[] code = CodeBytes.Assemble(a, 0x1000);

        ulong Count(JitOptions options)
        {
            using var ram = new GuestRam(1 << 20);
            ram.Write(0x1000, code);
            using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
            cpu.SetFlat64(0x1000, 0x8000);
            cpu.Gpr(6) = (ulong)iterations;
            Assert.Equal(ExitReason.Hlt, cpu.Run());
            return cpu.State->InstructionsRetired;
        }

        // jmp start, xor, per even iteration inc/test/jnz/call/add/ret/jmp/cmp/jb (9), per odd one
        // inc/test/jnz/sub/cmp/jb (6), hlt.
        ulong even = (ulong)(iterations / 2), odd2 = (ulong)(iterations - iterations / 2);
        ulong expected = 2 + even * 9 + odd2 * 6 + 1;
        Assert.Equal(expected, Count(JitOptions.InterpretOnly));
        Assert.Equal(expected, Count(JitOptions.CompileFirst));
        Assert.Equal(expected, Count(new JitOptions { CompileSynchronously = true }));
    }
}
