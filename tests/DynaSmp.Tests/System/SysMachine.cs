using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>A flat guest (64- or 32-bit, no paging) running one program at <see cref="CodeAddr"/> with HLT
/// appended; <see cref="Ring3"/> drops it to CPL 3 with flat DPL-3 segments.</summary>
public sealed unsafe class SysMachine : IDisposable
{
    public const ulong CodeAddr = 0x1000, StackTop = 0x8000, DataAddr = 0x10000;

    public readonly GuestRam Ram;
    public readonly CpuCore Cpu;
    public readonly int Bitness;
    public ulong HltAddr { get; }

    public static JitOptions Tier(int tier) => tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst;

    public SysMachine(int tier, Action<Assembler> emit, int bitness = 64, IGuestBus? bus = null)
    {
        var a = new Assembler(bitness);
        emit(a);
        var end = a.CreateLabel();
        a.Label(ref end);
        a.hlt();
        var w = new CodeBytes();
        var result = a.Assemble(w, CodeAddr, BlockEncoderOptions.ReturnNewInstructionOffsets);
        HltAddr = result.GetLabelRIP(end);
        Ram = new GuestRam(1 << 20);
        Ram.Write(CodeAddr, w.ToArray());
        Cpu = new CpuCore(Ram, bus ?? EmptyBus.Instance, new BlockCache(Ram), Tier(tier));
        Bitness = bitness;
        Reset();
    }

    public CpuState* S => Cpu.State;

    public void Reset()
    {
        if (Bitness == 64) Cpu.SetFlat64(CodeAddr, StackTop);
        else Cpu.SetFlat32(CodeAddr, StackTop);
    }

    /// <summary>CPL 3: CS selector 2Bh (RPL 3, DPL-3 code), SS 23h (DPL-3 data).</summary>
    public void Ring3()
    {
        uint longOrBig = Bitness == 64 ? SegmentCache.Long : SegmentCache.DefaultBig;
        S->Cs = SegmentCache.Flat(0x2B, 0xFB | longOrBig);
        S->Ss = SegmentCache.Flat(0x23, 0xF3 | SegmentCache.DefaultBig);
        Cpu.UpdateMode();
        Assert.Equal(3, S->Cpl);
    }

    /// <summary>Runs to the appended HLT: at CPL 0 it halts; at CPL 3 it is privileged and faults #GP(0) there.</summary>
    public void RunToHlt()
    {
        if (S->Cpl == 3)
        {
            RunExpectFault(Vector.GP, HltAddr);
            return;
        }
        var r = Cpu.Run();
        Assert.True(r == ExitReason.Hlt, $"exit {r}: {Cpu.ExitMessage} (vector {Cpu.ExitVector})");
        Assert.Equal(HltAddr + 1, S->Rip);
    }

    public void RunExpectFault(int vector, ulong rip, ulong errorCode = 0)
    {
        var r = Cpu.Run();
        Assert.True(r == ExitReason.Exception, $"exit {r}: {Cpu.ExitMessage}");
        Assert.Equal(vector, Cpu.ExitVector);
        Assert.Equal(errorCode, Cpu.ExitErrorCode);
        Assert.Equal(rip, S->Rip);
    }

    public ref ulong Gpr(int n) => ref S->Gpr[n];

    public Span<byte> Mem(ulong addr, int len) => Ram.Span(addr, len);

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}
