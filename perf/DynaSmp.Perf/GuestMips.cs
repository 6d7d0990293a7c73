using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using DynaSmp.Jit;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Perf;

/// <summary>Guest MIPS on compute loops: tier 1 (chained), tier 1 without chaining, tier 0, and the same
/// bytes run natively. Time per operation is per guest instruction: MIPS = 1000 / (ns per op).</summary>
[MemoryDiagnoser]
public unsafe class GuestMips
{
    const ulong Iterations = 200_000;

    [ParamsSource(nameof(Programs))] public string Program = "AluLoop10";
    public static IEnumerable<string> Programs => GuestPrograms.Names;

    /// <summary>Default tiering with synchronous tier-up, so the measured code is what a guest gets once hot.</summary>
    public static readonly JitOptions Tier1 = new() { CompileSynchronously = true };

    BenchGuest _jit = null!, _noChain = null!, _interp = null!;
    NativeCode _native = null!;
    void* _nativeBuffer;

    const int Ops = 200_000 * 8;

    [GlobalSetup]
    public void Setup()
    {
        var code = GuestPrograms.Assemble(Program, BenchGuest.Code, native: false);
        _jit = new BenchGuest(code, Tier1);
        _noChain = new BenchGuest(code, Tier1 with { Chaining = false });
        _interp = new BenchGuest(code, JitOptions.InterpretOnly);
        _jit.Run(1000); _jit.Run(1000); _noChain.Run(1000); _noChain.Run(1000); _interp.Run(10);
        _native = new NativeCode(GuestPrograms.Assemble(Program, 0x1000_0000, native: true));
        _nativeBuffer = NativeMemory.AllocZeroed(65536 + 64);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _jit.Dispose(); _noChain.Dispose(); _interp.Dispose(); _native.Dispose();
        NativeMemory.Free(_nativeBuffer);
    }

    // OperationsPerInvoke is a constant; each benchmark scales its iteration count so that it executes
    // about Ops guest instructions per invocation.
    ulong ItersFor() => (ulong)(Ops / GuestPrograms.InstructionsPerIteration(Program));

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public ulong Native() => _native.Entry((ulong)_nativeBuffer, ItersFor());

    [Benchmark(OperationsPerInvoke = Ops)]
    public ulong Tier1Chained() => _jit.Run(ItersFor());

    [Benchmark(OperationsPerInvoke = Ops)]
    public ulong Tier1Dispatcher() => _noChain.Run(ItersFor());

    [Benchmark(OperationsPerInvoke = Ops / 20)]
    public ulong Tier0Interpreter() => _interp.Run(ItersFor() / 20);
}
