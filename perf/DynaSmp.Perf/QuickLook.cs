using System.Diagnostics;
using System.Runtime.InteropServices;
using DynaSmp.Jit;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Perf;

/// <summary>A one-shot look at guest MIPS per tier next to native, best of five runs.</summary>
static unsafe class QuickLook
{
    public static void Run()
    {
        Console.WriteLine($"chaining through function pointers: {(CompiledBlock.FunctionPointersAvailable ? "available" : "unavailable")}");
        Console.WriteLine($"{"program",-12} {"native",10} {"tier1",10} {"tier1-noch",10} {"tier0",10}   (guest MIPS)");
        foreach (var name in GuestPrograms.Names)
        {
            var code = GuestPrograms.Assemble(name, BenchGuest.Code, native: false);
            int ipi = GuestPrograms.InstructionsPerIteration(name);
            using var jit = new BenchGuest(code, GuestMips.Tier1);
            using var noChain = new BenchGuest(code, GuestMips.Tier1 with { Chaining = false });
            using var interp = new BenchGuest(code, JitOptions.InterpretOnly);
            using var native = new NativeCode(GuestPrograms.Assemble(name, 0x1000_0000, native: true));
            void* buf = NativeMemory.AllocZeroed(65536 + 64);
            double n = Best(() => native.Entry((ulong)buf, 20_000_000), 20_000_000 * ipi);
            double t1 = Best(() => jit.Run(20_000_000), 20_000_000 * ipi);
            double t1n = Best(() => noChain.Run(5_000_000), 5_000_000 * ipi);
            double t0 = Best(() => interp.Run(200_000), 200_000 * ipi);
            Console.WriteLine($"{name,-12} {n,10:F0} {t1,10:F0} {t1n,10:F0} {t0,10:F0}   dispatcher lookups: tier1 {jit.Cpu.DispatcherLookups:N0}, no-chain {noChain.Cpu.DispatcherLookups:N0}");
            NativeMemory.Free(buf);
        }
    }

    static double Best(Func<ulong> run, double instructions)
    {
        double best = 0;
        try { run(); }
        catch (InvalidOperationException e) { Console.Error.WriteLine(e.Message); return double.NaN; }
        for (int k = 0; k < 5; k++)
        {
            var sw = Stopwatch.StartNew();
            run();
            double mips = instructions / sw.Elapsed.TotalSeconds / 1e6;
            best = Math.Max(best, mips);
        }
        return best;
    }
}
