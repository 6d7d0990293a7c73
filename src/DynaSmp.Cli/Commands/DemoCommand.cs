using System.CommandLine;
using System.Diagnostics;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp demo`: the single-CPU sieve on the translating CPU, with its guest MIPS.</summary>
static class DemoCommand
{
    public static Command Create()
    {
        var c = new Command("demo", "run the single-CPU sieve demo and print its guest MIPS");
        c.SetAction(_ => Run());
        return c;
    }

    static unsafe int Run()
    {
        const int Limit = 1_000_000, Rounds = 20;
        using var ram = new GuestRam(16 << 20);
        ram.Write(DemoGuest.LoadAddress, DemoGuest.Build(Limit, Rounds));
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram));
        cpu.SetFlat64(DemoGuest.LoadAddress, DemoGuest.StackTop);
        var sw = Stopwatch.StartNew();
        var exit = cpu.Run();
        sw.Stop();
        ulong insns = cpu.State->InstructionsRetired;
        Console.WriteLine($"dynasmp demo: sieve of Eratosthenes below {Limit:N0}, {Rounds} rounds, 64-bit code");
        Console.WriteLine($"  exit {exit}{(cpu.ExitMessage is { } m ? " (" + m + ")" : "")}, primes {cpu.Gpr(0):N0}, sieve FNV-1a 0x{cpu.Gpr(3):x16}");
        Console.WriteLine($"  {insns:N0} guest instructions in {sw.Elapsed.TotalMilliseconds:F1} ms: {insns / sw.Elapsed.TotalSeconds / 1e6:F0} guest MIPS");
        Console.WriteLine($"  tier-1 blocks compiled {TierUp.Compiled}, dispatcher lookups {cpu.DispatcherLookups:N0}, chaining {(CompiledBlock.FunctionPointersAvailable ? "on" : "off")}");
        return exit == ExitReason.Hlt && cpu.Gpr(0) == 78_498 ? 0 : 1;
    }
}
