using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Programs;

/// <summary>Tier configurations a program test runs under.</summary>
public static class Tiers
{
    public const int Interpret = 0, CompileFirst = 1, Tiered = 2, TieredBackground = 3;

    /// <summary>0: tier 0 only; 1: every block compiled (synchronously) after its first run; 2: tier-up after 50 runs,
    /// synchronous (deterministic; the programs loop a few thousand times, so 50 rather than the default 1,000 leaves
    /// most of each loop compiled); 3: default options (background compiler).</summary>
    public static JitOptions Options(int tier) => tier switch
    {
        Interpret => JitOptions.InterpretOnly,
        CompileFirst => JitOptions.CompileFirst,
        Tiered => new JitOptions { TierUpThreshold = 50, CompileSynchronously = true },
        _ => JitOptions.Default,
    };

    public static readonly TheoryData<int> All = new() { Interpret, CompileFirst, Tiered };
    public static readonly TheoryData<int> Compiled = new() { CompileFirst, Tiered };
}

/// <summary>A guest with RAM, one CPU and code assembled by Iced at known addresses.</summary>
public sealed unsafe class Guest : IDisposable
{
    public GuestRam Ram { get; }
    public CpuCore Cpu { get; }
    public CpuState* S => Cpu.State;

    public Guest(int tier, ulong ramSize = 2 << 20, JitOptions? options = null)
    {
        Ram = new GuestRam(ramSize);
        Cpu = new CpuCore(Ram, EmptyBus.Instance, new BlockCache(Ram), options ?? Tiers.Options(tier));
    }

    /// <summary>Assembles <paramref name="build"/> for <paramref name="ip"/> and stores it at physical <paramref name="phys"/>.</summary>
    public byte[] Load(int bitness, ulong phys, ulong ip, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        var bytes = CodeBytes.Assemble(a, ip);
        Ram.Write(phys, bytes);
        return bytes;
    }

    public static Guest Flat64(int tier, Action<Assembler> build, ulong rip = 0x1000, ulong rsp = 0x80000, JitOptions? options = null)
    {
        var g = new Guest(tier, options: options);
        g.Load(64, rip, rip, build);
        g.Cpu.SetFlat64(rip, rsp);
        return g;
    }

    public static Guest Flat32(int tier, Action<Assembler> build, ulong eip = 0x1000, ulong esp = 0x80000)
    {
        var g = new Guest(tier);
        g.Load(32, eip, eip, build);
        g.Cpu.SetFlat32(eip, esp);
        return g;
    }

    /// <summary>Real mode: CS = DS = ES = SS = FS = GS = <paramref name="cs"/>, code at CS:IP.</summary>
    public static Guest Real(int tier, ushort cs, ushort ip, ushort sp, Action<Assembler> build)
    {
        var g = new Guest(tier);
        g.Load(16, ((ulong)cs << 4) + ip, ip, build);
        g.Cpu.SetReal(cs, ip, sp);
        return g;
    }

    public ExitReason Run() => Cpu.Run();

    /// <summary>Runs to HLT, failing with the exit message otherwise.</summary>
    public void RunToHlt()
    {
        var r = Cpu.Run();
        Assert.True(r == ExitReason.Hlt, $"expected Hlt, got {r}: {Cpu.ExitMessage} (vector {Cpu.ExitVector}, RIP 0x{S->Rip:x})");
    }

    public ulong Reg(int index) => Cpu.Gpr(index);
    public ulong Rip => S->Rip;

    public ulong Read(ulong phys, int size)
    {
        var span = Ram.Span(phys, size);
        ulong v = 0;
        for (int k = 0; k < size; k++) v |= (ulong)span[k] << (8 * k);
        return v;
    }

    public void WriteU64(ulong phys, ulong v) => BitConverter.TryWriteBytes(Ram.Span(phys, 8), v);

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}

/// <summary>GPR indices in CpuState.Gpr order.</summary>
public static class R
{
    public const int Ax = 0, Cx = 1, Dx = 2, Bx = 3, Sp = 4, Bp = 5, Si = 6, Di = 7;
}
