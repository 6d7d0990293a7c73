using BenchmarkDotNet.Attributes;
using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Perf;

/// <summary>Cost of one block-to-block transfer: three tiny blocks jumping to each other, so nearly all
/// the time is transfers. Chained (tail call through the exit slot) versus returning to the dispatcher.</summary>
[MemoryDiagnoser]
public class BlockTransfer
{
    const int Iterations = 100_000, BlocksPerIteration = 3;
    BenchGuest _chained = null!, _dispatcher = null!;

    [GlobalSetup]
    public void Setup()
    {
        var a = new Assembler(64);
        Label b1 = a.CreateLabel(), b2 = a.CreateLabel(), b3 = a.CreateLabel(), end = a.CreateLabel();
        a.Label(ref b1);
        a.dec(rsi); a.jz(end);     // block 1: ends at the conditional branch
        a.Label(ref b2);
        a.jmp(b3);                 // block 2
        a.Label(ref b3);
        a.jmp(b1);                 // block 3
        a.Label(ref end);
        a.hlt();
        var w = new CodeBytes();
        a.Assemble(w, BenchGuest.Code);
        _chained = new BenchGuest(w.ToArray(), JitOptions.CompileFirst);
        _dispatcher = new BenchGuest(w.ToArray(), JitOptions.CompileFirst with { Chaining = false });
        // Regions would compile the three blocks into one method (IL branches, no transfer at all): measure the
        // method-to-method transfer itself.
        _chained.Cpu.Cache.Regions = false;
        _dispatcher.Cpu.Cache.Regions = false;
        _chained.Run(100); _dispatcher.Run(100);
    }

    [GlobalCleanup]
    public void Cleanup() { _chained.Dispose(); _dispatcher.Dispose(); }

    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations * BlocksPerIteration)]
    public ulong Dispatcher() => _dispatcher.Run(Iterations);

    [Benchmark(OperationsPerInvoke = Iterations * BlocksPerIteration)]
    public ulong Chained() => _chained.Run(Iterations);
}
