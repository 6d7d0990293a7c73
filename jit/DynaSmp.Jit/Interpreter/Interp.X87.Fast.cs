using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Tier 1's entry points for the x87 instructions compiled code runs most (Instructions/InstEmit.X87.cs).
/// Tier 1 decoded the instruction when it translated it, so it passes what tier 0 would look up in the Instruction (the
/// mnemonic, stack indices, FIP and FOP, the memory operand's bits as read, its offset and segment) and these run tier 0's
/// own cores on them: there is one definition of each instruction's semantics. Each returns 0, having changed nothing,
/// for the cases left to tier 0: a pending unmasked exception (#MF on a waiting instruction), a stack overflow or
/// underflow, and for stores an unmasked exception that stops the store. CR0.EM/TS is checked inline before the call.</summary>
/// <remarks>A tier-0 call of an x87 instruction cost about 90 ns (decode-table walks, Iced accessors, GPR write-back);
/// fpprint ran at a fifth of QEMU's speed with one in three of its instructions x87. <c>seg</c> is -1 for a form
/// without a memory operand (FDP and FDS are then left alone).</remarks>
public static unsafe partial class Interp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool X87ErrorPending(CpuState* s) => (s->FpuStatus & FswES) != 0;

    /// <summary>FLD m32fp/m64fp, FILD m16/m32/m64 (<paramref name="size"/> is the Iced MemorySize).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastLoadMem(CpuState* s, ulong bits, int size, ulong fip, int fop, int seg, ulong fdp)
    {
        if (X87ErrorPending(s) || !X87Empty(s, 7)) return 0;
        var e = FpEnv.FromControl(s->FpuControl);
        var v = X87FromBits(bits, (MemorySize)size, ref e, forLoad: true, out _);
        X87SetPointers(s, fip, fop, seg, fdp);
        X87PushLoaded(s, v, e);
        return 1;
    }

    /// <summary>FLD m80fp: the significand and sign/exponent as read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastLoadExtended(CpuState* s, ulong mant, ulong se, ulong fip, int fop, int seg, ulong fdp)
    {
        if (X87ErrorPending(s) || !X87Empty(s, 7)) return 0;
        X87SetPointers(s, fip, fop, seg, fdp);
        X87PushLoaded(s, new Ext80((ushort)se, mant), FpEnv.FromControl(s->FpuControl));
        return 1;
    }

    /// <summary>FLD ST(k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastLoadSt(CpuState* s, int k, ulong fip, int fop)
    {
        if (X87ErrorPending(s) || X87Empty(s, k) || !X87Empty(s, 7)) return 0;
        var v = X87Get(s, k);
        X87SetPointers(s, fip, fop);
        X87PushLoaded(s, v, FpEnv.FromControl(s->FpuControl));
        return 1;
    }

    /// <summary>FLD1, FLDZ and the other constants.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastConstant(CpuState* s, int mnemonic, ulong fip, int fop)
    {
        if (X87ErrorPending(s) || !X87Empty(s, 7)) return 0;
        X87SetPointers(s, fip, fop);
        X87PushConstant(s, (Mnemonic)mnemonic);
        return 1;
    }

    /// <summary>FST/FSTP ST(k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastStoreSt(CpuState* s, int k, int pop, ulong fip, int fop)
    {
        if (X87ErrorPending(s) || X87Empty(s, 0)) return 0;
        X87SetPointers(s, fip, fop);
        X87StoreSt(s, k, X87Get(s, 0), empty: false, pop != 0);
        return 1;
    }

    /// <summary>First half of FST/FSTP/FIST/FISTP/FISTTP m16/m32/m64 and FSTP m80: ST(0) converted into <paramref name="bits"/>
    /// (and bytes 8-9 of m80 into <paramref name="high"/>), nothing changed. Returns the exceptions to commit (bit 16 set, bit 8 = rounded up), which tier 1 passes to
    /// <see cref="X87FastStoreDone"/> once its memory write has not faulted; 0 to leave the instruction to tier 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastStoreValue(CpuState* s, int mnemonic, int size, out ulong bits, out ulong high)
    {
        bits = high = 0;
        if (X87ErrorPending(s) || X87Empty(s, 0)) return 0;
        var e = FpEnv.FromControl(s->FpuControl);
        bits = X87ToBits(ref e, X87Get(s, 0), (MemorySize)size, (Mnemonic)mnemonic, out ushort hi);
        high = hi;
        if ((e.Flags & ~e.Masks & (FpFlags.IE | FpFlags.DE | FpFlags.OE | FpFlags.UE)) != 0) return 0;
        return 1 << 16 | (e.RoundedUp ? 1 << 8 : 0) | e.Flags;
    }

    /// <summary>Second half of a store: the pointers, the exceptions <see cref="X87FastStoreValue"/> found, the pop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void X87FastStoreDone(CpuState* s, int status, int pop, ulong fip, int fop, int seg, ulong fdp)
    {
        X87SetPointers(s, fip, fop, seg, fdp);
        var e = FpEnv.FromControl(s->FpuControl);
        e.Flags = status & 0x3F;
        e.RoundedUp = (status & 1 << 8) != 0;
        X87Commit(s, e);
        if (pop != 0) X87Pop(s);
    }

    /// <summary>FADD..FDIVR and their popping and integer forms: ST(dst) op ST(src), or op the memory operand when
    /// <paramref name="src"/> is -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastArith(CpuState* s, int mnemonic, int dst, int src, ulong bits, int size, ulong fip, int fop, int seg, ulong fdp)
    {
        if (X87ErrorPending(s) || X87Empty(s, dst) || (src >= 0 && X87Empty(s, src))) return 0;
        var e = FpEnv.FromControl(s->FpuControl);
        Ext80 v = default;
        bool memDenormal = false;
        if (src < 0) v = X87FromBits(bits, (MemorySize)size, ref e, forLoad: false, out memDenormal);
        X87SetPointers(s, fip, fop, seg, fdp);
        X87ArithCore(s, (Mnemonic)mnemonic, dst, src, v, memDenormal, ref e);
        return 1;
    }

    /// <summary>FCOM/FUCOM/FICOM/FTST/FCOMI and their popping forms: ST(0) against ST(src), the memory operand
    /// (<paramref name="src"/> -1, <paramref name="seg"/> set) or zero (FTST: -1 and no memory).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastCompare(CpuState* s, int mnemonic, int src, ulong bits, int size, ulong fip, int fop, int seg, ulong fdp)
    {
        if (X87ErrorPending(s) || X87Empty(s, 0) || (src >= 0 && X87Empty(s, src))) return 0;
        var e = FpEnv.FromControl(s->FpuControl);
        Ext80 v = default;
        bool memDenormal = false;
        if (src < 0 && seg >= 0) v = X87FromBits(bits, (MemorySize)size, ref e, forLoad: false, out memDenormal);
        X87SetPointers(s, fip, fop, seg, fdp);
        X87CompareCore(s, (Mnemonic)mnemonic, src, v, memDenormal, ref e);
        return 1;
    }

    /// <summary>FXCH ST(k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastExchange(CpuState* s, int k, ulong fip, int fop)
    {
        if (X87ErrorPending(s) || X87Empty(s, 0) || X87Empty(s, k)) return 0;
        X87SetPointers(s, fip, fop);
        X87Exchange(s, k);
        return 1;
    }

    /// <summary>FCHS and FABS.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static int X87FastSign(CpuState* s, int mnemonic, ulong fip, int fop)
    {
        if (X87ErrorPending(s) || X87Empty(s, 0)) return 0;
        X87SetPointers(s, fip, fop);
        X87SetSign(s, (Mnemonic)mnemonic);
        return 1;
    }

    /// <summary>FLDCW's load of the word read (tier 0, and tier 1 directly: FLDCW has no case to decline).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void X87LoadControlWord(CpuState* s, ulong bits)
    {
        s->FpuControl = X87ControlWord((ushort)bits);
        UpdateErrorSummary(s);
    }
}
