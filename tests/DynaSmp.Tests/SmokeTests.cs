using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests;

public class SmokeTests
{
    [Theory]
    [InlineData(0)] // interpreter only
    [InlineData(1)] // compile every block first
    [InlineData(2)] // default tiering
    public void Counting_loop_sums_to_the_expected_value(int tier)
    {
        var opts = tier switch { 0 => JitOptions.InterpretOnly, 1 => JitOptions.CompileFirst, _ => new JitOptions { CompileSynchronously = true } };
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        a.xor(eax, eax);
        a.mov(ecx, 1000);
        a.Label(ref loop);
        a.add(rax, rcx);
        a.dec(ecx);
        a.jnz(loop);
        a.hlt();
        using var ram = new GuestRam(1 << 20);
        ram.Write(0x1000, CodeBytes.Assemble(a, 0x1000));
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), opts);
        cpu.SetFlat64(0x1000, 0x8000);
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        Assert.Equal(500500UL, cpu.Gpr(0));
    }
}
