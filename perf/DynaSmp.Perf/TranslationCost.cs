using BenchmarkDotNet.Attributes;
using DynaSmp.Jit;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Perf;

/// <summary>What it costs to make a block runnable in each tier: tier 0 = decode (and publish) a block,
/// tier 1 = emit IL and let RyuJIT compile it. Blocks of 4 and 16 guest instructions.</summary>
[MemoryDiagnoser]
public class TranslationCost
{
    [Params(4, 16)] public int BlockInstructions;
    BenchGuest _guest = null!;
    ulong _page;

    [GlobalSetup]
    public void Setup()
    {
        _guest = new BenchGuest(BlockCode(BlockInstructions), JitOptions.InterpretOnly);
        _page = BenchGuest.Code >> 12;
        _guest.Run(0); // decode once so Tier1Compile finds the block
    }

    /// <summary><paramref name="instructions"/> register/memory instructions then HLT: one block at <see cref="BenchGuest.Code"/>.</summary>
    public static byte[] BlockCode(int instructions)
    {
        var a = new Iced.Intel.Assembler(64);
        for (int k = 0; k < instructions; k++)
        {
            if (k % 4 == 3) a.mov(Iced.Intel.AssemblerRegisters.__qword_ptr[Iced.Intel.AssemblerRegisters.rdi + k * 8], Iced.Intel.AssemblerRegisters.rax);
            else a.add(Iced.Intel.AssemblerRegisters.rax, k + 1);
        }
        a.hlt();
        var w = new ByteWriter();
        a.Assemble(w, BenchGuest.Code);
        return w.Bytes.ToArray();
    }

    /// <summary>The block at <see cref="BenchGuest.Code"/> once <paramref name="guest"/> has run it.</summary>
    public static unsafe Block DecodedBlock(BenchGuest guest) =>
        guest.Cpu.Cache.Find(BenchGuest.Code, guest.Cpu.State->Mode, 0, BenchGuest.Code) ?? throw new InvalidOperationException("block not decoded");

    [GlobalCleanup] public void Cleanup() => _guest.Dispose();

    /// <summary>Tier 0: decode the block and interpret it once (what cold code pays on first execution).</summary>
    [Benchmark(Baseline = true)]
    public ulong Tier0DecodeAndRun()
    {
        _guest.Cpu.Cache.InvalidatePage(_page);
        _guest.Cpu.JumpCache.Flush();
        return _guest.Run(0);
    }

    /// <summary>Tier 1: emit IL for the block and compile it with RyuJIT (not the shared table's copy).</summary>
    [Benchmark]
    public object Tier1Compile()
    {
        var compiled = BlockTranslator.TranslateUncached(_guest.Cpu, DecodedBlock(_guest));
        compiled.Unlink();
        return compiled;
    }

    /// <summary>The floor under <see cref="Tier1Compile"/>: a method of the same signature that returns at once,
    /// created, compiled and asked for its entry the same way.</summary>
    [Benchmark]
    public nint DynamicMethodFloor()
    {
        var m = new System.Reflection.Emit.DynamicMethod("floor", typeof(int), BlockTranslator.Params, typeof(BlockTranslator).Module, true);
        var il = m.GetILGenerator();
        il.Emit(System.Reflection.Emit.OpCodes.Ldc_I4_0);
        il.Emit(System.Reflection.Emit.OpCodes.Ret);
        m.CreateDelegate<BlockFn>();
        return CompiledBlock.EntryOf(m);
    }

    sealed class ByteWriter : Iced.Intel.CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
