using System.Diagnostics;
using DynaSmp.Cli;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;

// Until the machine and the SMP guest land, the main job runs the built-in demo guest on one CPU.
const int Limit = 1_000_000, Rounds = 20;
using var ram = new GuestRam(16 << 20);
ram.Write(DemoGuest.LoadAddress, DemoGuest.Build(Limit, Rounds));
var cache = new BlockCache(ram);
using var cpu = new CpuCore(ram, EmptyBus.Instance, cache);
cpu.SetFlat64(DemoGuest.LoadAddress, DemoGuest.StackTop);
var sw = Stopwatch.StartNew();
var exit = cpu.Run();
sw.Stop();
unsafe
{
    ulong insns = cpu.State->InstructionsRetired;
    Console.WriteLine($"dynasmp: built-in guest (sieve of Eratosthenes below {Limit:N0}, {Rounds} rounds, 64-bit code)");
    Console.WriteLine($"  exit:            {exit}{(cpu.ExitMessage is { } m ? " (" + m + ")" : "")}");
    Console.WriteLine($"  primes found:    {cpu.Gpr(0):N0}");
    Console.WriteLine($"  sieve FNV-1a:    0x{cpu.Gpr(3):x16}");
    Console.WriteLine($"  guest insns:     {insns:N0}");
    Console.WriteLine($"  wall time:       {sw.Elapsed.TotalMilliseconds:F1} ms");
    Console.WriteLine($"  guest MIPS:      {insns / sw.Elapsed.TotalSeconds / 1e6:F0}");
    Console.WriteLine($"  blocks compiled: {TierUp.Compiled} (tier-1), dispatcher lookups {cpu.DispatcherLookups:N0}, chaining {(CompiledBlock.FunctionPointersAvailable ? "on" : "off (no function pointers)")}");
    return exit == ExitReason.Hlt && cpu.Gpr(0) == 78_498 ? 0 : 1;
}
