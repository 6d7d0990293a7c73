using DynaSmp.Jit;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Perf;

/// <summary>A CPU with a program loaded at 0x10000 and a 64 KiB buffer at 0x100000, ready to run to HLT.</summary>
public sealed unsafe class BenchGuest : IDisposable
{
    public const ulong Code = 0x1_0000, Buffer = 0x10_0000, Stack = 0x8000;
    public GuestRam Ram { get; }
    public CpuCore Cpu { get; }

    public BenchGuest(byte[] code, JitOptions options)
    {
        Ram = new GuestRam(4 << 20);
        Ram.Write(Code, code);
        Cpu = new CpuCore(Ram, EmptyBus.Instance, new BlockCache(Ram), options);
    }

    /// <summary>Runs the program from the start with RSI = <paramref name="iterations"/>; returns RAX.</summary>
    public ulong Run(ulong iterations)
    {
        Cpu.SetFlat64(Code, Stack);
        Cpu.Gpr(7) = Buffer;
        Cpu.Gpr(6) = iterations;
        var exit = Cpu.Run();
        if (exit != Jit.Cpu.ExitReason.Hlt) throw new InvalidOperationException($"guest stopped with {exit}: {Cpu.ExitMessage}");
        return Cpu.Gpr(0);
    }

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}
