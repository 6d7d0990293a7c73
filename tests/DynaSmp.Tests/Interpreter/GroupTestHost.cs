using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Interpreter;

/// <summary>Runs a small assembled program for the instruction-group tests. Tier 0 runs it once through the
/// interpreter; tier 1 runs it twice on the same CpuCore (CompileFirst compiles a block after its first run),
/// so the second, asserted run goes through translated code and its tier-0 fallbacks.</summary>
internal sealed unsafe class GroupTestHost : IDisposable
{
    public const ulong Code = 0x1000, Stack = 0x8000;

    public GuestRam Ram { get; }
    public CpuCore Cpu { get; }
    public int Bitness { get; }
    public ExitReason Exit { get; private set; }

    GroupTestHost(int bitness, byte[] code, JitOptions opts, IGuestBus? bus)
    {
        Bitness = bitness;
        Ram = new GuestRam(1 << 20);
        Ram.Write(Code, code);
        Cpu = new CpuCore(Ram, bus ?? EmptyBus.Instance, new BlockCache(Ram), opts);
    }

    public static byte[] Assemble(int bitness, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        // End the body's block with a jump so HLT sits in a block of its own: CpuCore.Interpret returns on a
        // halt before counting the block's execution, so a block ending in HLT would never be compiled.
        var end = a.CreateLabel();
        a.jmp(end);
        a.Label(ref end);
        a.hlt();
        return CodeBytes.Assemble(a, Code);
    }

    public static JitOptions Options(int tier) => tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst;

    /// <summary>Assembles <paramref name="build"/> (HLT appended), applies <paramref name="init"/> to a reset CPU and runs.</summary>
    /// <remarks>A block that faults or halts is not counted towards tier-up, so a tier-1 test of a fault passes
    /// <paramref name="warmup"/>: an init for the first pass under which the body completes.</remarks>
    public static GroupTestHost Run(int tier, int bitness, Action<Assembler> build, Action<GroupTestHost> init,
        IGuestBus? bus = null, Action<GroupTestHost>? warmup = null) =>
        RunBytes(tier, bitness, Assemble(bitness, build), init, bus, warmup);

    public static GroupTestHost RunBytes(int tier, int bitness, byte[] code, Action<GroupTestHost> init, IGuestBus? bus = null,
        Action<GroupTestHost>? warmup = null)
    {
        var h = new GroupTestHost(bitness, code, Options(tier), bus);
        for (int pass = 0; pass < (tier == 0 ? 1 : 2); pass++)
        {
            h.Reset();
            (pass == 0 && tier == 1 && warmup != null ? warmup : init)(h);
            long before = h.Cpu.CompiledBlockEntries;
            h.Exit = h.Cpu.Run(1_000_000);
            if (pass == 1) Assert.True(h.Cpu.CompiledBlockEntries > before, "the second pass did not run translated code");
        }
        return h;
    }

    public void Reset()
    {
        CpuState* s = Cpu.State;
        for (int k = 0; k < 16; k++) s->Gpr[k] = 0;
        switch (Bitness)
        {
            case 64: Cpu.SetFlat64(Code, Stack); break;
            case 32: Cpu.SetFlat32(Code, Stack); break;
            default: Cpu.SetReal(0, (ushort)Code, (ushort)Stack); break;
        }
        Ram.Span(0x2000, 0x6000).Clear();
    }

    public ref ulong this[int gpr] => ref Cpu.Gpr(gpr);

    public ulong Rip => Cpu.State->Rip;

    public ulong Rflags
    {
        get => Flags.Get(Cpu.State);
        set => Flags.Set(Cpu.State, value);
    }

    /// <summary>The six status flags only.</summary>
    public ulong Status => Flags.Get(Cpu.State) & RFlags.Status;

    public void Poke(ulong addr, ulong v, int size) => BitConverter.GetBytes(v).AsSpan(0, size).CopyTo(Ram.Span(addr, size));
    public void Poke(ulong addr, byte[] bytes) => Ram.Write(addr, bytes);
    public ulong Peek(ulong addr, int size)
    {
        Span<byte> b = stackalloc byte[8];
        Ram.Span(addr, size).CopyTo(b);
        return BitConverter.ToUInt64(b);
    }

    public void AssertHalted() => Assert.True(Exit == ExitReason.Hlt, $"exit {Exit}: {Cpu.ExitMessage}");

    public void AssertFault(int vector, ulong rip)
    {
        Assert.True(Exit == ExitReason.Exception, $"exit {Exit}");
        Assert.Equal(vector, Cpu.ExitVector);
        Assert.Equal(rip, Rip);
    }

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}

/// <summary>Flags shorthand for expectations.</summary>
internal static class F
{
    public const ulong CF = RFlags.CF, PF = RFlags.PF, AF = RFlags.AF, ZF = RFlags.ZF, SF = RFlags.SF, OF = RFlags.OF;
    public const ulong All = RFlags.Status;
}
