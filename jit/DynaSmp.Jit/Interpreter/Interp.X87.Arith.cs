using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>x87 value instructions: loads, stores, arithmetic, comparisons, FXCH/FCMOV/FFREE and the stack
/// pointer (SDM Vol. 1 chapter 8, Vol. 2 instruction pages). Every operation computes with <see cref="SoftFloat80"/>
/// and then commits through <see cref="X87Commit"/>, which applies the masked/unmasked exception rules.</summary>
public static unsafe partial class Interp
{
    const ushort FswC0 = 1 << 8, FswC1 = 1 << 9, FswC2 = 1 << 10, FswC3 = 1 << 14, FswSF = 1 << 6;
    const ushort FswCc = FswC0 | FswC1 | FswC2 | FswC3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int X87Top(CpuState* s) => (s->FpuStatus >> 11) & 7;

    static void X87SetTop(CpuState* s, int top) => s->FpuStatus = (ushort)((s->FpuStatus & ~0x3800) | ((top & 7) << 11));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int X87Phys(CpuState* s, int st) => (X87Top(s) + st) & 7;

    static bool X87Empty(CpuState* s, int st) => (s->FpuTag & (1 << X87Phys(s, st))) == 0;

    static Ext80 X87Get(CpuState* s, int st) => Ext80.Load(s->FpuRegs + 10 * X87Phys(s, st));

    static void X87Set(CpuState* s, int st, Ext80 v)
    {
        int p = X87Phys(s, st);
        v.Store(s->FpuRegs + 10 * p);
        s->FpuTag |= (byte)(1 << p);
    }

    static void X87Pop(CpuState* s)
    {
        s->FpuTag &= (byte)~(1 << X87Phys(s, 0));
        X87SetTop(s, X87Top(s) + 1);
    }

    static void X87Push(CpuState* s, Ext80 v)
    {
        X87SetTop(s, X87Top(s) - 1);
        X87Set(s, 0, v);
    }

    static void X87SetCc(CpuState* s, int cc) => s->FpuStatus = (ushort)((s->FpuStatus & ~FswCc) | (cc & FswCc));

    /// <summary>A stack fault (SDM Vol. 1 8.5.1.1): IE and SF, C1 = 1 for overflow, 0 for underflow. Returns true when
    /// IE is masked, so the instruction continues with the QNaN indefinite as its result.</summary>
    static bool X87StackFault(CpuState* s, bool overflow)
    {
        s->FpuStatus = (ushort)((s->FpuStatus & ~FswC1) | FpFlags.IE | FswSF | (overflow ? FswC1 : 0));
        UpdateErrorSummary(s);
        return (s->FpuControl & FpFlags.IE) != 0;
    }

    /// <summary>Applies an operation's exceptions to FSW. Returns false when an unmasked invalid-operation, denormal or
    /// zero-divide exception means the destination and TOP must stay unchanged (SDM Vol. 1 8.5.1-8.5.3); otherwise the
    /// caller stores the result (scaled by 2^±24576 for unmasked overflow/underflow, which RoundCore produced). C1 is set
    /// when the result was rounded up, cleared otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static bool X87Commit(CpuState* s, in FpEnv e)
    {
        int flags = e.Flags;
        // An invalid operation is detected before a denormal operand (SDM Vol. 1 8.7 priority): IE suppresses DE.
        if ((flags & FpFlags.IE) != 0) flags &= ~FpFlags.DE;
        if ((flags & FpFlags.PreComputation & ~e.Masks) != 0)
        {
            s->FpuStatus = (ushort)((s->FpuStatus & ~FswC1) | (flags & FpFlags.PreComputation));
            UpdateErrorSummary(s);
            return false;
        }
        bool up = (flags & FpFlags.PE) != 0 && e.RoundedUp;
        s->FpuStatus = (ushort)((s->FpuStatus & ~FswC1) | flags | (up ? FswC1 : 0));
        UpdateErrorSummary(s);
        return true;
    }

    /// <summary>Records the last non-control instruction's pointers (FIP/FCS, FDP/FDS, FOP; SDM Vol. 1 8.1.8-8.1.9).
    /// FOP is rebuilt from the opcode: for memory forms the ModRM mod and r/m bits are not known here and read as 0.</summary>
    static void X87RecordPointers(CpuState* s, in Instruction i)
    {
        bool mem = i.HasOpKind(OpKind.Memory);
        X87SetPointers(s, Is64BitMode(s) ? i.IP : i.IP & 0xFFFF_FFFF, X87Fop(i), mem ? (int)SegOf(i.MemorySegment) : -1,
            mem ? EffectiveOffset(s, i) : 0);
    }

    /// <summary>FOP of <paramref name="i"/>: the low 3 bits of the escape opcode, then the ModRM byte (reg field only
    /// for memory forms).</summary>
    internal static int X87Fop(in Instruction i)
    {
        var op = i.Code.ToOpCode();
        if (op.OpCodeLength == 2) return (int)(op.OpCode & 0x7FF);
        return (int)(((op.OpCode & 7) << 8) | (uint)(op.GroupIndex >= 0 ? op.GroupIndex << 3 : 0));
    }

    /// <summary>FIP/FCS and FOP, and FDP/FDS unless <paramref name="seg"/> is -1 (no memory operand: they keep their values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void X87SetPointers(CpuState* s, ulong fip, int fop, int seg = -1, ulong fdp = 0)
    {
        s->FpuIp = fip;
        s->FpuCs = s->Cs.Selector;
        s->FpuOpcode = (ushort)fop;
        if (seg < 0) return;
        s->FpuDp = fdp;
        s->FpuDs = s->Seg((SegReg)seg).Selector;
    }

    static int StIndex(Register r) => r - Register.ST0;

    /// <summary>Reads a memory operand as an extended value. <paramref name="forLoad"/> (FLD): an SNaN is quieted with
    /// IE; as an arithmetic operand it stays signalling for the operation's NaN rules. A single/double denormal raises DE
    /// in <paramref name="memDenormal"/> (after conversion it is a normal extended value).</summary>
    static Ext80 X87ReadMem(CpuCore c, in Instruction i, ref FpEnv e, bool forLoad, out bool memDenormal)
    {
        CpuState* s = c.State;
        memDenormal = false;
        ulong a = MemAddress(s, i);
        switch (i.MemorySize)
        {
            case MemorySize.Float32: return X87FromBits(Mem.Read32(c, a), MemorySize.Float32, ref e, forLoad, out memDenormal);
            case MemorySize.Float64: return X87FromBits(Mem.Read64(c, a), MemorySize.Float64, ref e, forLoad, out memDenormal);
            case MemorySize.Float80:
            {
                ulong m = Mem.Read64(c, a);
                ushort se = Mem.Read16(c, a + 8);
                return new Ext80(se, m);
            }
            case MemorySize.Int16: return SoftFloat80.FromInt64((short)Mem.Read16(c, a));
            case MemorySize.Int32: return SoftFloat80.FromInt64((int)Mem.Read32(c, a));
            case MemorySize.Int64: return SoftFloat80.FromInt64((long)Mem.Read64(c, a));
            case MemorySize.Bcd:
            {
                ulong lo = Mem.Read64(c, a);
                ushort hi = Mem.Read16(c, a + 8);
                return SoftFloat80.FromBcd(lo, hi);
            }
            default: throw CpuFault.UD();
        }
    }

    /// <summary>A 2-, 4- or 8-byte memory operand's value (<paramref name="bits"/>, as read) as an extended value: see
    /// <see cref="X87ReadMem"/>. Tier 1 reads the memory itself and passes the bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Ext80 X87FromBits(ulong bits, MemorySize size, ref FpEnv e, bool forLoad, out bool memDenormal)
    {
        memDenormal = false;
        switch (size)
        {
            case MemorySize.Float32:
            {
                uint v = (uint)bits;
                memDenormal = (v & 0x7F80_0000) == 0 && (v & 0x7F_FFFF) != 0;
                var t = new FpEnv();
                var r = SoftFloat80.FromF32(ref t, v);
                if (forLoad) e.Flags |= t.Flags;
                else if ((v & 0x7F80_0000) == 0x7F80_0000 && (v & 0x7F_FFFF) != 0 && (v & 0x40_0000) == 0) r.Mant &= ~Ext80.QuietBit;
                return r;
            }
            case MemorySize.Float64:
            {
                ulong v = bits;
                memDenormal = (v & 0x7FF0_0000_0000_0000) == 0 && (v & 0xF_FFFF_FFFF_FFFF) != 0;
                var t = new FpEnv();
                var r = SoftFloat80.FromF64(ref t, v);
                if (forLoad) e.Flags |= t.Flags;
                else if ((v & 0x7FF0_0000_0000_0000) == 0x7FF0_0000_0000_0000 && (v & 0xF_FFFF_FFFF_FFFF) != 0 && (v & 0x8_0000_0000_0000) == 0)
                    r.Mant &= ~Ext80.QuietBit;
                return r;
            }
            case MemorySize.Int16: return SoftFloat80.FromInt64((short)bits);
            case MemorySize.Int32: return SoftFloat80.FromInt64((int)bits);
            case MemorySize.Int64: return SoftFloat80.FromInt64((long)bits);
            default: throw CpuFault.UD();
        }
    }

    static readonly Ext80[] X87Constants =
    [
        new(0x3FFF, 0x8000_0000_0000_0000), // FLD1
        new(0x4000, 0xD49A_784B_CD1B_8AFE), // FLDL2T (log2 10), rounded to nearest
        new(0x3FFF, 0xB8AA_3B29_5C17_F0BC), // FLDL2E (log2 e)
        new(0x4000, 0xC90F_DAA2_2168_C235), // FLDPI
        new(0x3FFD, 0x9A20_9A84_FBCF_F799), // FLDLG2 (log10 2)
        new(0x3FFE, 0xB172_17F7_D1CF_79AC), // FLDLN2 (ln 2)
        new(0x0000, 0),                     // FLDZ
    ];

    /// <summary>The constants are held with more than 64 bits and rounded by FCW.RC (SDM Vol. 1 8.3.8): under
    /// round-down/toward-zero the ones rounded up to nearest lose one ulp; under round-up L2T gains one.</summary>
    static Ext80 X87Constant(CpuState* s, Mnemonic m)
    {
        int rc = (s->FpuControl >> 10) & 3;
        int k = m switch
        {
            Mnemonic.Fld1 => 0, Mnemonic.Fldl2t => 1, Mnemonic.Fldl2e => 2, Mnemonic.Fldpi => 3,
            Mnemonic.Fldlg2 => 4, Mnemonic.Fldln2 => 5, _ => 6,
        };
        var v = X87Constants[k];
        bool downward = rc is Rounding.Down or Rounding.Zero;
        if (downward && k is 2 or 3 or 4 or 5) v.Mant--;
        if (rc == Rounding.Up && k == 1) v.Mant++;
        return v;
    }

    /// <summary>Everything but the control instructions handled in Interp.X87.cs. Returns false for an opcode
    /// that is not implemented.</summary>
    static bool TryExecuteX87Value(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Fnop: case Mnemonic.Fneni: case Mnemonic.Fndisi: case Mnemonic.Fnsetpm:
            case Mnemonic.Feni: case Mnemonic.Fdisi: case Mnemonic.Fsetpm:
                X87RecordPointers(s, i);
                return true;
            case Mnemonic.Fld: case Mnemonic.Fild: case Mnemonic.Fbld:
                X87Load(c, i);
                return true;
            case Mnemonic.Fld1: case Mnemonic.Fldl2t: case Mnemonic.Fldl2e: case Mnemonic.Fldpi:
            case Mnemonic.Fldlg2: case Mnemonic.Fldln2: case Mnemonic.Fldz:
                X87RecordPointers(s, i);
                if (!X87Empty(s, 7))
                {
                    if (X87StackFault(s, overflow: true)) X87Push(s, Ext80.Indefinite);
                    return true;
                }
                X87PushConstant(s, i.Mnemonic);
                return true;
            case Mnemonic.Fst: case Mnemonic.Fstp: case Mnemonic.Fstpnce:
            case Mnemonic.Fist: case Mnemonic.Fistp: case Mnemonic.Fisttp: case Mnemonic.Fbstp:
                X87Store(c, i);
                return true;
            case Mnemonic.Fadd: case Mnemonic.Faddp: case Mnemonic.Fiadd:
            case Mnemonic.Fsub: case Mnemonic.Fsubp: case Mnemonic.Fisub:
            case Mnemonic.Fsubr: case Mnemonic.Fsubrp: case Mnemonic.Fisubr:
            case Mnemonic.Fmul: case Mnemonic.Fmulp: case Mnemonic.Fimul:
            case Mnemonic.Fdiv: case Mnemonic.Fdivp: case Mnemonic.Fidiv:
            case Mnemonic.Fdivr: case Mnemonic.Fdivrp: case Mnemonic.Fidivr:
                X87Arith(c, i);
                return true;
            case Mnemonic.Fcom: case Mnemonic.Fcomp: case Mnemonic.Fcompp:
            case Mnemonic.Fucom: case Mnemonic.Fucomp: case Mnemonic.Fucompp:
            case Mnemonic.Ficom: case Mnemonic.Ficomp: case Mnemonic.Ftst:
            case Mnemonic.Fcomi: case Mnemonic.Fcomip: case Mnemonic.Fucomi: case Mnemonic.Fucomip:
                X87Compare(c, i);
                return true;
            case Mnemonic.Fxam:
            {
                X87RecordPointers(s, i);
                var v = X87Get(s, 0);
                int cc = X87Empty(s, 0) ? FswC3 | FswC0 : SoftFloat80.ExamineClass(v) switch
                {
                    0x40 => FswC3, 0x44 => FswC3 | FswC2, 4 => FswC2, 5 => FswC2 | FswC0, 1 => FswC0, _ => 0,
                };
                X87SetCc(s, cc | (v.Sign ? FswC1 : 0));
                return true;
            }
            case Mnemonic.Fchs: case Mnemonic.Fabs:
                X87RecordPointers(s, i);
                if (X87Empty(s, 0))
                {
                    if (X87StackFault(s, overflow: false)) X87Set(s, 0, Ext80.Indefinite);
                    return true;
                }
                X87SetSign(s, i.Mnemonic);
                return true;
            case Mnemonic.Fsqrt: case Mnemonic.Frndint:
            {
                X87RecordPointers(s, i);
                if (X87Empty(s, 0))
                {
                    if (X87StackFault(s, overflow: false)) X87Set(s, 0, Ext80.Indefinite);
                    return true;
                }
                var e = FpEnv.FromControl(s->FpuControl);
                var r = i.Mnemonic == Mnemonic.Fsqrt ? SoftFloat80.Sqrt(ref e, X87Get(s, 0), e.Pc) : SoftFloat80.RoundInt(ref e, X87Get(s, 0));
                if (X87Commit(s, e)) X87Set(s, 0, r);
                return true;
            }
            case Mnemonic.Fscale:
            {
                X87RecordPointers(s, i);
                if (X87Empty(s, 0) || X87Empty(s, 1))
                {
                    if (X87StackFault(s, overflow: false)) X87Set(s, 0, Ext80.Indefinite);
                    return true;
                }
                var e = FpEnv.FromControl(s->FpuControl);
                var r = SoftFloat80.Scale(ref e, X87Get(s, 0), X87Get(s, 1));
                if (X87Commit(s, e)) X87Set(s, 0, r);
                return true;
            }
            case Mnemonic.Fprem: case Mnemonic.Fprem1:
            {
                X87RecordPointers(s, i);
                if (X87Empty(s, 0) || X87Empty(s, 1))
                {
                    s->FpuStatus &= unchecked((ushort)~FswC2);
                    if (X87StackFault(s, overflow: false)) X87Set(s, 0, Ext80.Indefinite);
                    return true;
                }
                var e = FpEnv.FromControl(s->FpuControl);
                var r = SoftFloat80.Remainder(ref e, X87Get(s, 0), X87Get(s, 1), i.Mnemonic == Mnemonic.Fprem1, out int q, out bool complete);
                bool done = X87Commit(s, e);
                // C2 = incomplete; C0, C3, C1 = quotient bits 2, 1, 0 when complete, all clear when not (SDM FPREM;
                // observed). A NaN result or an unmasked exception clears C2 and C1 and leaves C0 and C3.
                int cc = r.IsNaN || !done ? s->FpuStatus & (FswC0 | FswC3)
                    : !complete ? FswC2
                    : ((q & 4) != 0 ? FswC0 : 0) | ((q & 2) != 0 ? FswC3 : 0) | ((q & 1) != 0 ? FswC1 : 0);
                X87SetCc(s, cc);
                if (done) X87Set(s, 0, r);
                return true;
            }
            case Mnemonic.Fxtract:
            {
                X87RecordPointers(s, i);
                if (X87Empty(s, 0))
                {
                    if (X87StackFault(s, overflow: false)) { X87Set(s, 0, Ext80.Indefinite); X87Push(s, Ext80.Indefinite); }
                    return true;
                }
                if (!X87Empty(s, 7))
                {
                    if (X87StackFault(s, overflow: true)) { X87Set(s, 0, Ext80.Indefinite); X87Push(s, Ext80.Indefinite); }
                    return true;
                }
                var e = FpEnv.FromControl(s->FpuControl);
                SoftFloat80.Extract(ref e, X87Get(s, 0), out var exponent, out var significand);
                if (!X87Commit(s, e)) return true;
                X87Set(s, 0, exponent);
                X87Push(s, significand);
                return true;
            }
            case Mnemonic.Fxch:
                X87RecordPointers(s, i);
                X87Exchange(s, i.OpCount >= 2 ? StIndex(i.Op1Register) : 1);
                return true;
            case Mnemonic.Ffree: case Mnemonic.Ffreep:
                X87RecordPointers(s, i);
                s->FpuStatus &= unchecked((ushort)~FswC1); // C0-C3 are undefined (SDM FFREE); C1 reads 0 on hardware
                s->FpuTag &= (byte)~(1 << X87Phys(s, StIndex(i.Op0Register)));
                if (i.Mnemonic == Mnemonic.Ffreep) X87Pop(s);
                return true;
            case Mnemonic.Fincstp: case Mnemonic.Fdecstp:
                X87RecordPointers(s, i);
                s->FpuStatus &= unchecked((ushort)~FswC1);
                X87SetTop(s, X87Top(s) + (i.Mnemonic == Mnemonic.Fincstp ? 1 : -1));
                return true;
            case Mnemonic.Fcmovb: case Mnemonic.Fcmove: case Mnemonic.Fcmovbe: case Mnemonic.Fcmovu:
            case Mnemonic.Fcmovnb: case Mnemonic.Fcmovne: case Mnemonic.Fcmovnbe: case Mnemonic.Fcmovnu:
            {
                X87RecordPointers(s, i);
                int k = StIndex(i.Op1Register);
                if (X87Empty(s, 0) || X87Empty(s, k))
                {
                    if (X87StackFault(s, overflow: false)) X87Set(s, 0, Ext80.Indefinite);
                    return true;
                }
                ulong f = Flags.Get(s); // C1 is left alone (SDM FCMOVcc: set only on stack underflow)
                bool cond = i.Mnemonic switch
                {
                    Mnemonic.Fcmovb => (f & RFlags.CF) != 0,
                    Mnemonic.Fcmove => (f & RFlags.ZF) != 0,
                    Mnemonic.Fcmovbe => (f & (RFlags.CF | RFlags.ZF)) != 0,
                    Mnemonic.Fcmovu => (f & RFlags.PF) != 0,
                    Mnemonic.Fcmovnb => (f & RFlags.CF) == 0,
                    Mnemonic.Fcmovne => (f & RFlags.ZF) == 0,
                    Mnemonic.Fcmovnbe => (f & (RFlags.CF | RFlags.ZF)) == 0,
                    _ => (f & RFlags.PF) == 0,
                };
                if (cond) X87Set(s, 0, X87Get(s, k));
                return true;
            }
            case Mnemonic.Fstenv: case Mnemonic.Fnstenv: case Mnemonic.Fldenv:
            case Mnemonic.Fsave: case Mnemonic.Fnsave: case Mnemonic.Frstor:
                X87Environment(c, i);
                return true;
            case Mnemonic.Fsin: case Mnemonic.Fcos: case Mnemonic.Fsincos: case Mnemonic.Fptan:
            case Mnemonic.Fpatan: case Mnemonic.F2xm1: case Mnemonic.Fyl2x: case Mnemonic.Fyl2xp1:
                X87RecordPointers(s, i);
                X87Transcendental(c, i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>FLD1..FLDZ into a free ST(7) once the pointers are recorded.</summary>
    static void X87PushConstant(CpuState* s, Mnemonic m)
    {
        s->FpuStatus &= unchecked((ushort)~FswC1);
        X87Push(s, X87Constant(s, m));
    }

    /// <summary>FCHS/FABS of a non-empty ST(0) once the pointers are recorded.</summary>
    static void X87SetSign(CpuState* s, Mnemonic m)
    {
        s->FpuStatus &= unchecked((ushort)~FswC1);
        X87Set(s, 0, m == Mnemonic.Fchs ? X87Get(s, 0).Negate() : X87Get(s, 0).Abs());
    }

    /// <summary>FXCH ST(k) once the pointers are recorded.</summary>
    static void X87Exchange(CpuState* s, int k)
    {
        if (X87Empty(s, 0) || X87Empty(s, k))
        {
            if (!X87StackFault(s, overflow: false)) return;
            if (X87Empty(s, 0)) X87Set(s, 0, Ext80.Indefinite);
            if (X87Empty(s, k)) X87Set(s, k, Ext80.Indefinite);
        }
        else s->FpuStatus &= unchecked((ushort)~FswC1);
        var a = X87Get(s, 0);
        X87Set(s, 0, X87Get(s, k));
        X87Set(s, k, a);
    }

    static void X87Load(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var e = FpEnv.FromControl(s->FpuControl);
        Ext80 v;
        if (i.Op0Kind == OpKind.Memory) v = X87ReadMem(c, i, ref e, forLoad: true, out _);
        else
        {
            int k = StIndex(i.Op0Register);
            if (X87Empty(s, k))
            {
                // An empty source is a stack underflow even when the push would also overflow (observed).
                X87RecordPointers(s, i);
                if (X87StackFault(s, overflow: false)) X87Push(s, Ext80.Indefinite);
                return;
            }
            v = X87Get(s, k);
        }
        X87RecordPointers(s, i);
        X87PushLoaded(s, v, e);
    }

    /// <summary>The push of FLD/FILD once the value is read and the pointers recorded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void X87PushLoaded(CpuState* s, Ext80 v, in FpEnv e)
    {
        if (!X87Empty(s, 7))
        {
            if (X87StackFault(s, overflow: true)) X87Push(s, Ext80.Indefinite);
            return;
        }
        // FLD completes even when a denormal single/double source raises an unmasked DE (observed): only IE stops it.
        if (X87Commit(s, e) || (e.Flags & FpFlags.IE & ~e.Masks) == 0) X87Push(s, v);
    }

    static void X87Store(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        bool pop = m is Mnemonic.Fstp or Mnemonic.Fstpnce or Mnemonic.Fistp or Mnemonic.Fisttp or Mnemonic.Fbstp;
        X87RecordPointers(s, i);
        var e = FpEnv.FromControl(s->FpuControl);
        bool empty = X87Empty(s, 0);
        var v = empty ? Ext80.Indefinite : X87Get(s, 0);
        if (empty && m == Mnemonic.Fstpnce)
        {
            // FSTP1 (D9 D8+i, an undocumented alias of FSTP ST(i)) from an empty ST(0): no stack fault and ST(i) is not
            // written, only the pop, and C1 is cleared; observed on Intel (model 0xCF) and AMD (family 1Ah) parts.
            s->FpuStatus &= unchecked((ushort)~FswC1);
            X87Pop(s);
            return;
        }
        if (empty)
        {
            if (!X87StackFault(s, overflow: false)) return;
            e.Flags |= FpFlags.IE; // masked: the indefinite of the destination format is stored
        }
        if (i.Op0Kind == OpKind.Register)
        {
            X87StoreSt(s, StIndex(i.Op0Register), v, empty, pop);
            return;
        }
        int size = MemSize(i.MemorySize);
        ulong a = MemAddress(s, i, size, write: true);
        // Compute first; memory is written only if no unmasked exception forbids it.
        ulong lo = X87ToBits(ref e, v, i.MemorySize, m, out ushort hi);
        if (empty) e.Flags &= FpFlags.IE;
        // Unmasked IE, DE, OE or UE: nothing is stored and nothing popped (SDM Vol. 1 8.5.1, 8.5.4, 8.5.5).
        int unmasked = e.Flags & ~e.Masks;
        if ((unmasked & (FpFlags.IE | FpFlags.DE | FpFlags.OE | FpFlags.UE)) != 0)
        {
            int keep = (unmasked & (FpFlags.IE | FpFlags.DE)) != 0 ? e.Flags & FpFlags.PreComputation : e.Flags;
            bool up = (keep & FpFlags.PE) != 0 && e.RoundedUp;
            s->FpuStatus = (ushort)((s->FpuStatus & ~FswC1) | keep | (up ? FswC1 : 0));
            if (empty) s->FpuStatus |= FswSF;
            UpdateErrorSummary(s);
            return;
        }
        switch (size)
        {
            case 2: Mem.Write16(c, a, (ushort)lo); break;
            case 4: Mem.Write32(c, a, (uint)lo); break;
            case 8: Mem.Write64(c, a, lo); break;
            default:
                if ((a & GuestRam.PageMask) > GuestRam.PageSize - 10) c.Mmu.Translate(a + 9, MemAccess.Write);
                Mem.Write64(c, a, lo);
                Mem.Write16(c, a + 8, hi);
                break;
        }
        if (!empty) X87Commit(s, e);
        if (pop) X87Pop(s);
    }

    /// <summary>FST/FSTP ST(i) once the pointers are recorded (<paramref name="v"/> is the indefinite when ST(0) is empty
    /// and the masked stack fault was taken).</summary>
    static void X87StoreSt(CpuState* s, int k, Ext80 v, bool empty, bool pop)
    {
        if (!empty) s->FpuStatus &= unchecked((ushort)~FswC1);
        X87Set(s, k, v);
        if (pop) X87Pop(s);
    }

    /// <summary>ST(0) as stored to memory by FST/FIST/FISTTP/FBSTP: the low 8 bytes, and bytes 8-9 of a 10-byte format.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static ulong X87ToBits(ref FpEnv e, Ext80 v, MemorySize size, Mnemonic m, out ushort hi)
    {
        hi = 0;
        int rc = m == Mnemonic.Fisttp ? Rounding.Zero : e.Rc;
        switch (size)
        {
            case MemorySize.Float32: return SoftFloat80.ToF32(ref e, v);
            case MemorySize.Float64: return SoftFloat80.ToF64(ref e, v);
            case MemorySize.Float80: hi = v.Se; return v.Mant;
            case MemorySize.Int16: return (ulong)SoftFloat80.ToInt(ref e, v, 16, rc);
            case MemorySize.Int32: return (ulong)SoftFloat80.ToInt(ref e, v, 32, rc);
            case MemorySize.Int64: return (ulong)SoftFloat80.ToInt(ref e, v, 64, rc);
            case MemorySize.Bcd: SoftFloat80.ToBcd(ref e, v, out ulong lo, out hi); return lo;
            default: throw CpuFault.UD();
        }
    }

    static void X87Arith(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        var e = FpEnv.FromControl(s->FpuControl);
        int dst, srcReg;
        Ext80 src = default;
        bool memDenormal = false;
        if (i.HasOpKind(OpKind.Memory))
        {
            src = X87ReadMem(c, i, ref e, forLoad: false, out memDenormal);
            dst = 0;
            srcReg = -1;
        }
        else if (i.OpCount >= 2)
        {
            dst = StIndex(i.Op0Register);
            srcReg = StIndex(i.Op1Register);
        }
        else
        {
            dst = 1;
            srcReg = 0;
        }
        X87RecordPointers(s, i);
        X87ArithCore(s, m, dst, srcReg, src, memDenormal, ref e);
    }

    /// <summary>FADD..FDIVR once the operands are resolved (<paramref name="srcReg"/> -1: <paramref name="src"/> came from
    /// memory) and the pointers recorded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void X87ArithCore(CpuState* s, Mnemonic m, int dst, int srcReg, Ext80 src, bool memDenormal, ref FpEnv e)
    {
        bool pop = m is Mnemonic.Faddp or Mnemonic.Fsubp or Mnemonic.Fsubrp or Mnemonic.Fmulp or Mnemonic.Fdivp or Mnemonic.Fdivrp;
        if (X87Empty(s, dst) || (srcReg >= 0 && X87Empty(s, srcReg)))
        {
            if (!X87StackFault(s, overflow: false)) return;
            X87Set(s, dst, Ext80.Indefinite);
            if (pop) X87Pop(s);
            return;
        }
        var d = X87Get(s, dst);
        if (srcReg >= 0) src = X87Get(s, srcReg);
        // A denormal single/double operand raises DE unless a NaN operand or a zero divisor takes precedence.
        bool zeroDivisor = m is Mnemonic.Fdivr or Mnemonic.Fdivrp or Mnemonic.Fidivr && d.IsZero;
        if (memDenormal && !d.IsNaN && !d.IsUnsupported && !zeroDivisor) e.Flags |= FpFlags.DE;
        Ext80 r = m switch
        {
            Mnemonic.Fadd or Mnemonic.Faddp or Mnemonic.Fiadd => SoftFloat80.Add(ref e, d, src, subtract: false),
            Mnemonic.Fsub or Mnemonic.Fsubp or Mnemonic.Fisub => SoftFloat80.Add(ref e, d, src, subtract: true),
            Mnemonic.Fsubr or Mnemonic.Fsubrp or Mnemonic.Fisubr => SoftFloat80.Add(ref e, src, d, subtract: true),
            Mnemonic.Fmul or Mnemonic.Fmulp or Mnemonic.Fimul => SoftFloat80.Mul(ref e, d, src),
            Mnemonic.Fdiv or Mnemonic.Fdivp or Mnemonic.Fidiv => SoftFloat80.Div(ref e, d, src),
            _ => SoftFloat80.Div(ref e, src, d),
        };
        if (!X87Commit(s, e)) return;
        X87Set(s, dst, r);
        if (pop) X87Pop(s);
    }

    static void X87Compare(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        var e = FpEnv.FromControl(s->FpuControl);
        Ext80 b = default;
        int srcReg = 1;
        bool memDenormal = false;
        if (m == Mnemonic.Ftst) srcReg = -1;
        else if (i.HasOpKind(OpKind.Memory))
        {
            b = X87ReadMem(c, i, ref e, forLoad: false, out memDenormal);
            srcReg = -1;
        }
        else if (i.OpCount >= 2) srcReg = StIndex(i.Op1Register);
        else if (i.OpCount == 1) srcReg = StIndex(i.Op0Register);
        X87RecordPointers(s, i);
        X87CompareCore(s, m, srcReg, b, memDenormal, ref e);
    }

    /// <summary>FCOM/FUCOM/FICOM/FTST/FCOMI and their popping forms once the operands are resolved (<paramref name="srcReg"/>
    /// -1: <paramref name="b"/> came from memory, or FTST's zero) and the pointers recorded.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void X87CompareCore(CpuState* s, Mnemonic m, int srcReg, Ext80 b, bool memDenormal, ref FpEnv e)
    {
        int pops = m is Mnemonic.Fcompp or Mnemonic.Fucompp ? 2
            : m is Mnemonic.Fcomp or Mnemonic.Fucomp or Mnemonic.Ficomp or Mnemonic.Fcomip or Mnemonic.Fucomip ? 1 : 0;
        bool eflags = m is Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip;
        // The condition codes (or EFLAGS) are set even when an unmasked exception is raised; only the pops are skipped.
        int result;
        bool completes, stackFault = false;
        int c1Before = s->FpuStatus & FswC1;
        if (X87Empty(s, 0) || (srcReg >= 0 && X87Empty(s, srcReg)))
        {
            completes = X87StackFault(s, overflow: false);
            stackFault = true;
            result = 2;
        }
        else
        {
            var a = X87Get(s, 0);
            if (srcReg >= 0) b = X87Get(s, srcReg);
            if (memDenormal && !a.IsNaN && !a.IsUnsupported) e.Flags |= FpFlags.DE;
            bool quiet = m is Mnemonic.Fucom or Mnemonic.Fucomp or Mnemonic.Fucompp or Mnemonic.Fucomi or Mnemonic.Fucomip;
            result = SoftFloat80.Compare(ref e, a, b, quiet);
            completes = X87Commit(s, e);
        }
        if (eflags)
        {
            ulong f = result switch { 0 => RFlags.ZF, -1 => RFlags.CF, 1 => 0, _ => RFlags.ZF | RFlags.PF | RFlags.CF };
            Flags.SetStatus(s, RFlags.Status, f);
            // C1 is cleared only by a stack underflow. The SDM says "C1: Set to 0" for every FCOMI, but Intel (model 0xCF)
            // and AMD (family 1Ah) silicon both leave it as it was (differential runs on both).
            if (!stackFault) s->FpuStatus = (ushort)((s->FpuStatus & ~FswC1) | c1Before);
        }
        else X87SetCc(s, result switch { 0 => FswC3, -1 => FswC0, 1 => 0, _ => FswC3 | FswC2 | FswC0 });
        if (!completes) return;
        for (int k = 0; k < pops; k++) X87Pop(s);
    }
}
