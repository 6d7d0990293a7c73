using System.Runtime.Intrinsics;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.SseInsns;

/// <summary>A flat 64-bit guest with one program at <see cref="CodeAddr"/> (HLT appended) that a test can
/// run many times with different register and memory inputs.</summary>
public sealed unsafe class SseMachine : IDisposable
{
    public const ulong CodeAddr = 0x1000, StackTop = 0x8000, DataAddr = 0x10000;

    public readonly GuestRam Ram;
    public readonly CpuCore Cpu;

    public static JitOptions Tier(int tier) => tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst;

    public SseMachine(int tier, Action<Assembler> emit, int bitness = 64)
    {
        var a = new Assembler(bitness);
        emit(a);
        a.hlt();
        var code = CodeBytes.Assemble(a, CodeAddr);
        Ram = new GuestRam(1 << 20);
        Ram.Write(CodeAddr, code);
        Cpu = new CpuCore(Ram, EmptyBus.Instance, new BlockCache(Ram), Tier(tier));
        Bitness = bitness;
        Reset();
    }

    public int Bitness { get; }
    public CpuState* S => Cpu.State;

    /// <summary>Back to the program start in flat mode (CR4.OSFXSR set by SetFlat*).</summary>
    public void Reset()
    {
        if (Bitness == 64) Cpu.SetFlat64(CodeAddr, StackTop);
        else Cpu.SetFlat32(CodeAddr, StackTop);
    }

    public ExitReason Run()
    {
        Reset();
        return Cpu.Run();
    }

    /// <summary>Runs and expects the guest to reach the final HLT.</summary>
    public void RunToHlt()
    {
        var r = Run();
        Assert.True(r == ExitReason.Hlt, $"exit {r}: {Cpu.ExitMessage}");
    }

    /// <summary>Runs and expects exception <paramref name="vector"/> on the instruction at <paramref name="rip"/>.</summary>
    public void RunExpectFault(int vector, ulong rip, ulong errorCode = 0)
    {
        Assert.Equal(ExitReason.Exception, Run());
        Assert.Equal(vector, Cpu.ExitVector);
        Assert.Equal(errorCode, Cpu.ExitErrorCode);
        Assert.Equal(rip, S->Rip);
    }

    public Vector128<ulong> GetXmm(int n) => Vector128.Create(S->Xmm[2 * n], S->Xmm[2 * n + 1]);

    public void SetXmm(int n, Vector128<ulong> v)
    {
        S->Xmm[2 * n] = v.GetElement(0);
        S->Xmm[2 * n + 1] = v.GetElement(1);
    }

    public ref ulong Gpr(int n) => ref S->Gpr[n];

    public Span<byte> Mem(ulong addr, int len) => Ram.Span(addr, len);

    public Vector128<ulong> ReadMem128(ulong addr)
    {
        var sp = Ram.Span(addr, 16);
        return Vector128.Create(BitConverter.ToUInt64(sp), BitConverter.ToUInt64(sp[8..]));
    }

    public void WriteMem128(ulong addr, Vector128<ulong> v)
    {
        var sp = Ram.Span(addr, 16);
        BitConverter.TryWriteBytes(sp, v.GetElement(0));
        BitConverter.TryWriteBytes(sp[8..], v.GetElement(1));
    }

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}

/// <summary>Random XMM inputs biased toward the interesting lanes (equal, 0, -1, min/max signed).</summary>
public sealed class SseRandom(int seed)
{
    readonly Random _r = new(seed);
    static readonly byte[] Special = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];

    public ulong U64() => (ulong)_r.NextInt64() ^ ((ulong)_r.Next(2) << 63);
    public int Next(int max) => _r.Next(max);

    public Vector128<ulong> Vec()
    {
        Span<byte> b = stackalloc byte[16];
        _r.NextBytes(b);
        for (int k = 0; k < 16; k++)
            if (_r.Next(4) == 0) b[k] = Special[_r.Next(Special.Length)];
        return Vector128.Create(b).AsUInt64();
    }

    /// <summary>A second operand that equals <paramref name="a"/> in about a quarter of its bytes (or words).</summary>
    public Vector128<ulong> VecNear(Vector128<ulong> a)
    {
        var b = Vec().AsByte();
        var ab = a.AsByte();
        for (int k = 0; k < 16; k += 2)
            if (_r.Next(4) == 0) b = b.WithElement(k, ab[k]).WithElement(k + 1, ab[k + 1]);
        return b.AsUInt64();
    }

    /// <summary>A shift count: mostly around the element widths, sometimes any 64-bit value.</summary>
    public ulong Count() => _r.Next(4) switch
    {
        0 => U64(),
        1 => (ulong)_r.Next(256),
        _ => (ulong)_r.Next(70),
    };
}
