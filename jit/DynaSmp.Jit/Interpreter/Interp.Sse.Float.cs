using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE/SSE2 floating point (legacy encodings): arithmetic, MIN/MAX, SQRT, CMPcc, (U)COMIS, and the
/// conversions. Every lane is computed with <see cref="SoftFloat80"/> rounding to single or double precision under
/// MXCSR (RC, FTZ, DAZ), so results and flags are bit-exact in every mode; no host FP state is involved.</summary>
/// <remarks>Flags of all lanes are OR-ed into MXCSR; if any is unmasked, nothing is written and the instruction
/// raises #XM, or #UD when CR4.OSXMMEXCPT is clear (SDM Vol. 1 11.5.1, Vol. 3A 2.5).</remarks>
public static unsafe partial class Interp
{
    const ulong Cr4OsXmmExcpt = 1 << 10;

    static FpEnv SseEnv(CpuState* s, bool dbl) => new()
    {
        Rc = (int)(s->Mxcsr >> 13) & 3,
        Masks = (int)(s->Mxcsr >> 7) & 0x3F,
        Format = dbl ? 64 : 32,
        Ftz = (s->Mxcsr & (1 << 15)) != 0,
        Pc = dbl ? 53 : 24,
    };

    static bool Daz(CpuState* s) => (s->Mxcsr & (1 << 6)) != 0;

    /// <summary>Lane bits as an extended value, NaNs kept signalling; DAZ turns denormals into zeros, otherwise they
    /// are reported in <paramref name="denormal"/>.</summary>
    static Ext80 SseUnpack(ulong bits, bool dbl, bool daz, ref bool denormal)
    {
        if (dbl)
        {
            bool sign = (bits >> 63) != 0;
            int ex = (int)(bits >> 52) & 0x7FF;
            ulong f = bits & 0xF_FFFF_FFFF_FFFF;
            if (ex == 0x7FF) return new Ext80((ushort)(sign ? 0xFFFF : 0x7FFF), Ext80.J | (f << 11));
            if (ex == 0 && f != 0)
            {
                if (daz) return Ext80.Zero(sign);
                denormal = true;
            }
            var t = new FpEnv();
            return SoftFloat80.FromF64(ref t, bits);
        }
        else
        {
            uint v = (uint)bits;
            bool sign = (v >> 31) != 0;
            int ex = (int)(v >> 23) & 0xFF;
            ulong f = v & 0x7F_FFFF;
            if (ex == 0xFF) return new Ext80((ushort)(sign ? 0xFFFF : 0x7FFF), Ext80.J | (f << 40));
            if (ex == 0 && f != 0)
            {
                if (daz) return Ext80.Zero(sign);
                denormal = true;
            }
            var t = new FpEnv();
            return SoftFloat80.FromF32(ref t, v);
        }
    }

    /// <summary>Packs an extended value that is exactly representable in the lane format (NaN payloads truncated).</summary>
    static ulong SsePack(Ext80 a, bool dbl)
    {
        var t = new FpEnv { Masks = 0x3F, Rc = Rounding.Zero };
        return dbl ? SoftFloat80.ToF64(ref t, a) : SoftFloat80.ToF32(ref t, a);
    }

    static ulong Lane(ulong lo, ulong hi, int k, bool dbl) =>
        dbl ? (k == 0 ? lo : hi) : (uint)((k < 2 ? lo : hi) >> (32 * (k & 1)));

    static void SetLane(ref ulong lo, ref ulong hi, int k, bool dbl, ulong v)
    {
        if (dbl) { if (k == 0) lo = v; else hi = v; return; }
        int sh = 32 * (k & 1);
        ulong m = 0xFFFF_FFFFUL << sh;
        if (k < 2) lo = (lo & ~m) | (v << sh);
        else hi = (hi & ~m) | (v << sh);
    }

    /// <summary>Reads the source operand (op 1) as two qwords: xmm, m128 (aligned) for packed forms, or m32/m64 for
    /// scalar forms and the half-width conversions.</summary>
    static void SseSource(CpuCore c, in Instruction i, int op, int memBytes, out ulong lo, out ulong hi)
    {
        CpuState* s = c.State;
        if (i.GetOpKind(op) == OpKind.Register)
        {
            var r = i.GetOpRegister(op);
            if (r.IsXMM())
            {
                int n = XmmSlot(r);
                lo = s->Xmm[n];
                hi = s->Xmm[n + 1];
            }
            else { lo = ReadReg(s, r); hi = 0; }
            return;
        }
        if (memBytes == 16)
        {
            var v = Read128(c, Address128(s, i, aligned: true));
            lo = v.GetElement(0);
            hi = v.GetElement(1);
            return;
        }
        ulong a = MemAddress(s, i, memBytes, write: false);
        lo = memBytes == 8 ? Mem.Read64(c, a) : Mem.Read32(c, a);
        hi = 0;
    }

    /// <summary>Merges the flags into MXCSR; true when an unmasked one forbids writing the result (then #XM/#UD).</summary>
    static void SseFinish(CpuState* s, in FpEnv e)
    {
        int flags = e.Flags;
        s->Mxcsr |= (uint)(flags & 0x3F);
        if ((flags & ~((int)(s->Mxcsr >> 7) & 0x3F) & 0x3F) != 0)
            throw (s->Cr4 & Cr4OsXmmExcpt) != 0 ? new CpuFault(Vector.XM) : CpuFault.UD();
    }

    static bool TrySseFloat(CpuCore c, in Instruction i)
    {
        if (i.Mnemonic == Mnemonic.Cmpsd && i.Code != Code.Cmpsd_xmm_xmmm64_imm8) return false; // the string CMPSD
        switch (i.Mnemonic)
        {
            case Mnemonic.Addps: case Mnemonic.Addpd: case Mnemonic.Addss: case Mnemonic.Addsd:
            case Mnemonic.Subps: case Mnemonic.Subpd: case Mnemonic.Subss: case Mnemonic.Subsd:
            case Mnemonic.Mulps: case Mnemonic.Mulpd: case Mnemonic.Mulss: case Mnemonic.Mulsd:
            case Mnemonic.Divps: case Mnemonic.Divpd: case Mnemonic.Divss: case Mnemonic.Divsd:
            case Mnemonic.Minps: case Mnemonic.Minpd: case Mnemonic.Minss: case Mnemonic.Minsd:
            case Mnemonic.Maxps: case Mnemonic.Maxpd: case Mnemonic.Maxss: case Mnemonic.Maxsd:
            case Mnemonic.Sqrtps: case Mnemonic.Sqrtpd: case Mnemonic.Sqrtss: case Mnemonic.Sqrtsd:
            case Mnemonic.Cmpps: case Mnemonic.Cmppd: case Mnemonic.Cmpss: case Mnemonic.Cmpsd:
                SseArith(c, i);
                return true;
            case Mnemonic.Comiss: case Mnemonic.Ucomiss: case Mnemonic.Comisd: case Mnemonic.Ucomisd:
                SseComi(c, i);
                return true;
            case Mnemonic.Rcpps: case Mnemonic.Rcpss: case Mnemonic.Rsqrtps: case Mnemonic.Rsqrtss:
                SseReciprocal(c, i);
                return true;
            case Mnemonic.Cvtsi2ss: case Mnemonic.Cvtsi2sd: case Mnemonic.Cvtss2si: case Mnemonic.Cvtsd2si:
            case Mnemonic.Cvttss2si: case Mnemonic.Cvttsd2si: case Mnemonic.Cvtss2sd: case Mnemonic.Cvtsd2ss:
            case Mnemonic.Cvtps2pd: case Mnemonic.Cvtpd2ps: case Mnemonic.Cvtdq2ps: case Mnemonic.Cvtps2dq:
            case Mnemonic.Cvttps2dq: case Mnemonic.Cvtdq2pd: case Mnemonic.Cvtpd2dq: case Mnemonic.Cvttpd2dq:
                SseConvert(c, i);
                return true;
            default:
                return false;
        }
    }

    static void SseArith(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        bool dbl = m is Mnemonic.Addpd or Mnemonic.Addsd or Mnemonic.Subpd or Mnemonic.Subsd or Mnemonic.Mulpd or Mnemonic.Mulsd
            or Mnemonic.Divpd or Mnemonic.Divsd or Mnemonic.Minpd or Mnemonic.Minsd or Mnemonic.Maxpd or Mnemonic.Maxsd
            or Mnemonic.Sqrtpd or Mnemonic.Sqrtsd or Mnemonic.Cmppd or Mnemonic.Cmpsd;
        bool scalar = m is Mnemonic.Addss or Mnemonic.Addsd or Mnemonic.Subss or Mnemonic.Subsd or Mnemonic.Mulss or Mnemonic.Mulsd
            or Mnemonic.Divss or Mnemonic.Divsd or Mnemonic.Minss or Mnemonic.Minsd or Mnemonic.Maxss or Mnemonic.Maxsd
            or Mnemonic.Sqrtss or Mnemonic.Sqrtsd or Mnemonic.Cmpss or Mnemonic.Cmpsd;
        int lanes = scalar ? 1 : dbl ? 2 : 4;
        SseSource(c, i, 1, scalar ? (dbl ? 8 : 4) : 16, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong alo = s->Xmm[d], ahi = s->Xmm[d + 1];
        ulong rlo = alo, rhi = ahi;
        var e = SseEnv(s, dbl);
        bool daz = Daz(s);
        int pred = m is Mnemonic.Cmpps or Mnemonic.Cmppd or Mnemonic.Cmpss or Mnemonic.Cmpsd ? i.Immediate8 & 7 : -1;
        var all = e;
        for (int k = 0; k < lanes; k++)
        {
            // Flags per lane: an invalid operation or a zero divisor in a lane suppresses that lane's DE (observed).
            e = all;
            e.Flags = 0;
            ulong ab = Lane(alo, ahi, k, dbl), bb = Lane(blo, bhi, k, dbl);
            bool den = false, unary = m is Mnemonic.Sqrtps or Mnemonic.Sqrtpd or Mnemonic.Sqrtss or Mnemonic.Sqrtsd;
            var a = unary ? default : SseUnpack(ab, dbl, daz, ref den);
            var b = SseUnpack(bb, dbl, daz, ref den);
            // DE is per lane and only when no operand of the lane is a NaN (observed).
            bool anyNaN = a.IsNaN || b.IsNaN;
            ulong r;
            switch (m)
            {
                case Mnemonic.Minps: case Mnemonic.Minpd: case Mnemonic.Minss: case Mnemonic.Minsd:
                case Mnemonic.Maxps: case Mnemonic.Maxpd: case Mnemonic.Maxss: case Mnemonic.Maxsd:
                {
                    // Any NaN (even quiet) is invalid and returns the second operand; so does a pair of zeros (SDM MINPS).
                    bool min = m is Mnemonic.Minps or Mnemonic.Minpd or Mnemonic.Minss or Mnemonic.Minsd;
                    if (anyNaN) { e.Flags |= FpFlags.IE; r = b.IsZero ? SsePack(b, dbl) : bb; break; }
                    if (den) e.Flags |= FpFlags.DE;
                    int cmp = SoftFloat80.Compare(ref e, a, b, quiet: true);
                    bool takeA = min ? cmp < 0 : cmp > 0;
                    // The chosen operand as read, or its DAZ zero.
                    r = takeA ? (a.IsZero ? SsePack(a, dbl) : ab) : (b.IsZero ? SsePack(b, dbl) : bb);
                    break;
                }
                case Mnemonic.Cmpps: case Mnemonic.Cmppd: case Mnemonic.Cmpss: case Mnemonic.Cmpsd:
                {
                    // Predicates 1, 2, 5, 6 (LT, LE, NLT, NLE) signal on any NaN; the others only on SNaN.
                    bool signaling = pred is 1 or 2 or 5 or 6;
                    if (!anyNaN && den) e.Flags |= FpFlags.DE;
                    int cmp = SoftFloat80.Compare(ref e, a, b, quiet: !signaling);
                    bool t = pred switch
                    {
                        0 => cmp == 0, 1 => cmp == -1, 2 => cmp is -1 or 0, 3 => cmp == 2,
                        4 => cmp != 0, 5 => cmp != -1, 6 => cmp is not (-1 or 0), _ => cmp != 2,
                    };
                    r = t ? (dbl ? ulong.MaxValue : 0xFFFF_FFFF) : 0;
                    break;
                }
                default:
                {
                    if (!anyNaN && den) e.Flags |= FpFlags.DE;
                    Ext80 v = m switch
                    {
                        Mnemonic.Addps or Mnemonic.Addpd or Mnemonic.Addss or Mnemonic.Addsd => SoftFloat80.Add(ref e, a, b, subtract: false),
                        Mnemonic.Subps or Mnemonic.Subpd or Mnemonic.Subss or Mnemonic.Subsd => SoftFloat80.Add(ref e, a, b, subtract: true),
                        Mnemonic.Mulps or Mnemonic.Mulpd or Mnemonic.Mulss or Mnemonic.Mulsd => SoftFloat80.Mul(ref e, a, b),
                        Mnemonic.Divps or Mnemonic.Divpd or Mnemonic.Divss or Mnemonic.Divsd => SoftFloat80.Div(ref e, a, b),
                        _ => SoftFloat80.Sqrt(ref e, b, dbl ? 53 : 24),
                    };
                    r = SsePack(v, dbl);
                    break;
                }
            }
            SetLane(ref rlo, ref rhi, k, dbl, r);
            if ((e.Flags & (FpFlags.IE | FpFlags.ZE)) != 0) e.Flags &= ~FpFlags.DE;
            all.Flags |= e.Flags;
        }
        SseFinish(s, all);
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }

    /// <summary>One lane of an SSE addition, subtraction or multiplication for the instructions that combine lanes
    /// (HADD/HSUB/ADDSUB, DPPS/DPPD), with the lane flag rules of <see cref="SseArith"/>: DE only when neither operand is
    /// a NaN, and not together with IE or ZE. The lane's flags are OR-ed into <paramref name="all"/>.</summary>
    static ulong SseAddLane(ref FpEnv all, ulong x, ulong y, bool subtract, bool dbl, bool daz, bool multiply = false)
    {
        var e = all;
        e.Flags = 0;
        bool den = false;
        var a = SseUnpack(x, dbl, daz, ref den);
        var b = SseUnpack(y, dbl, daz, ref den);
        if (den && !a.IsNaN && !b.IsNaN) e.Flags |= FpFlags.DE;
        var v = multiply ? SoftFloat80.Mul(ref e, a, b) : SoftFloat80.Add(ref e, a, b, subtract);
        if ((e.Flags & (FpFlags.IE | FpFlags.ZE)) != 0) e.Flags &= ~FpFlags.DE;
        all.Flags |= e.Flags;
        return SsePack(v, dbl);
    }

    /// <summary>RCPPS/RCPSS/RSQRTPS/RSQRTSS. The SDM bounds the relative error by 1.5 * 2^-12 and leaves the exact bits
    /// to the implementation (Intel and AMD tables differ); DynaSmp returns the correctly rounded single (binary64
    /// division and square root, exact IEEE operations on every host), which is within that bound. No exception is
    /// raised and MXCSR is not read: denormal inputs count as zero, results below 2^-126 are flushed to zero.</summary>
    static void SseReciprocal(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        bool scalar = i.Mnemonic is Mnemonic.Rcpss or Mnemonic.Rsqrtss;
        bool rsqrt = i.Mnemonic is Mnemonic.Rsqrtps or Mnemonic.Rsqrtss;
        SseSource(c, i, 1, scalar ? 4 : 16, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong rlo = s->Xmm[d], rhi = s->Xmm[d + 1];
        for (int k = 0; k < (scalar ? 1 : 4); k++)
            SetLane(ref rlo, ref rhi, k, false, ReciprocalLane((uint)Lane(blo, bhi, k, false), rsqrt));
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }

    static uint ReciprocalLane(uint v, bool rsqrt)
    {
        uint sign = v & 0x8000_0000;
        uint mag = v & 0x7FFF_FFFF;
        if (mag > 0x7F80_0000) return v | 0x40_0000;                 // NaN: quieted
        if (rsqrt && sign != 0 && mag >= 0x80_0000) return 0xFFC0_0000; // negative (not zero/denormal): QNaN indefinite
        if (mag < 0x80_0000) return sign | 0x7F80_0000;                // ±0 and denormals: ±infinity
        if (mag == 0x7F80_0000) return sign;                           // ±infinity: ±0
        double x = BitConverter.Int32BitsToSingle((int)mag);
        float r = (float)(rsqrt ? 1.0 / Math.Sqrt(x) : 1.0 / x);
        uint rb = (uint)BitConverter.SingleToInt32Bits(r);
        if (rb < 0x80_0000) rb = 0;                                    // would be denormal: flushed
        return sign | rb;
    }

    static void SseComi(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        bool dbl = i.Mnemonic is Mnemonic.Comisd or Mnemonic.Ucomisd;
        SseSource(c, i, 1, dbl ? 8 : 4, out ulong blo, out _);
        int d = XmmSlot(i.Op0Register);
        var e = SseEnv(s, dbl);
        bool den = false, daz = Daz(s);
        var a = SseUnpack(Lane(s->Xmm[d], 0, 0, dbl), dbl, daz, ref den);
        var b = SseUnpack(Lane(blo, 0, 0, dbl), dbl, daz, ref den);
        if (den && !a.IsNaN && !b.IsNaN) e.Flags |= FpFlags.DE;
        int cmp = SoftFloat80.Compare(ref e, a, b, quiet: i.Mnemonic is Mnemonic.Ucomiss or Mnemonic.Ucomisd);
        SseFinish(s, e);
        ulong f = cmp switch { 0 => RFlags.ZF, -1 => RFlags.CF, 1 => 0, _ => RFlags.ZF | RFlags.PF | RFlags.CF };
        Flags.SetStatus(s, RFlags.Status, f); // OF, SF, AF cleared (SDM COMISS)
    }

    static void SseConvert(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        bool daz = Daz(s);
        switch (m)
        {
            case Mnemonic.Cvtsi2ss: case Mnemonic.Cvtsi2sd:
            {
                bool dbl = m == Mnemonic.Cvtsi2sd;
                int size = i.Op1Kind == OpKind.Register ? i.Op1Register.GetSize() : i.MemorySize.GetSize();
                ulong raw = i.Op1Kind == OpKind.Register ? ReadReg(s, i.Op1Register) : size == 8 ? Mem.Read64(c, MemAddress(s, i, 8, false)) : Mem.Read32(c, MemAddress(s, i, 4, false));
                long v = size == 8 ? (long)raw : (int)raw;
                var e = SseEnv(s, dbl);
                var x = SoftFloat80.FromInt64(v);
                ulong r = x.IsZero ? SsePack(x, dbl) : SsePack(SseRound(ref e, x), dbl);
                SseFinish(s, e);
                int d = XmmSlot(i.Op0Register);
                ulong lo = s->Xmm[d], hi = s->Xmm[d + 1];
                SetLane(ref lo, ref hi, 0, dbl, r);
                s->Xmm[d] = lo;
                return;
            }
            case Mnemonic.Cvtss2si: case Mnemonic.Cvtsd2si: case Mnemonic.Cvttss2si: case Mnemonic.Cvttsd2si:
            {
                bool dbl = m is Mnemonic.Cvtsd2si or Mnemonic.Cvttsd2si;
                SseSource(c, i, 1, dbl ? 8 : 4, out ulong blo, out _);
                bool den = false;
                var x = SseUnpack(Lane(blo, 0, 0, dbl), dbl, daz, ref den);
                var e = SseEnv(s, dbl);
                int bits = i.Op0Register.GetSize() * 8;
                bool trunc = m is Mnemonic.Cvttss2si or Mnemonic.Cvttsd2si;
                long v = SoftFloat80.ToInt(ref e, x, bits, trunc ? Rounding.Zero : e.Rc);
                SseFinish(s, e);
                WriteReg(s, i.Op0Register, bits == 64 ? (ulong)v : (uint)v);
                return;
            }
            default:
                SsePackedConvert(c, i, daz);
                return;
        }
    }

    /// <summary>Rounds an exact extended value to the lane format of <paramref name="e"/>.</summary>
    static Ext80 SseRound(ref FpEnv e, Ext80 x)
    {
        if (x.IsNaN || x.IsInf || x.IsZero) return x;
        SoftFloat80.Unpack(x, out int ex, out ulong sig);
        return SoftFloat80.RoundPack(ref e, x.Sign, ex, sig, 0, 64);
    }

    static void SsePackedConvert(CpuCore c, in Instruction i, bool daz)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        // Source lane format, count, destination kind.
        (bool srcDbl, bool srcInt, int n, bool dstDbl, bool dstInt, int memBytes) shape = m switch
        {
            Mnemonic.Cvtss2sd => (false, false, 1, true, false, 4),
            Mnemonic.Cvtsd2ss => (true, false, 1, false, false, 8),
            Mnemonic.Cvtps2pd => (false, false, 2, true, false, 8),
            Mnemonic.Cvtpd2ps => (true, false, 2, false, false, 16),
            Mnemonic.Cvtdq2ps => (false, true, 4, false, false, 16),
            Mnemonic.Cvtps2dq or Mnemonic.Cvttps2dq => (false, false, 4, false, true, 16),
            Mnemonic.Cvtdq2pd => (false, true, 2, true, false, 8),
            _ => (true, false, 2, false, true, 16), // CVTPD2DQ, CVTTPD2DQ
        };
        SseSource(c, i, 1, shape.memBytes, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong rlo, rhi;
        bool scalar = m is Mnemonic.Cvtss2sd or Mnemonic.Cvtsd2ss;
        if (scalar) { rlo = s->Xmm[d]; rhi = s->Xmm[d + 1]; }
        else { rlo = 0; rhi = 0; } // CVTPD2PS/CVTPD2DQ zero the upper half; the others write all 128 bits
        var e = SseEnv(s, shape.dstDbl);
        bool trunc = m is Mnemonic.Cvttps2dq or Mnemonic.Cvttpd2dq;
        for (int k = 0; k < shape.n; k++)
        {
            ulong lane = Lane(blo, bhi, k, shape.srcDbl && !shape.srcInt);
            ulong r;
            if (shape.srcInt)
            {
                var x = SoftFloat80.FromInt64((int)(uint)lane);
                r = x.IsZero ? SsePack(x, shape.dstDbl) : SsePack(SseRound(ref e, x), shape.dstDbl);
            }
            else
            {
                bool den = false;
                var x = SseUnpack(lane, shape.srcDbl, daz, ref den);
                if (shape.dstInt)
                {
                    r = (uint)SoftFloat80.ToInt(ref e, x, 32, trunc ? Rounding.Zero : e.Rc);
                }
                else
                {
                    if (den && !x.IsNaN) e.Flags |= FpFlags.DE;
                    if (x.IsNaN)
                    {
                        if (x.IsSNaN) e.Flags |= FpFlags.IE;
                        r = SsePack(x.Quiet(), shape.dstDbl);
                    }
                    else r = SsePack(SseRound(ref e, x), shape.dstDbl);
                }
            }
            SetLane(ref rlo, ref rhi, k, shape.dstDbl && !shape.dstInt, r);
        }
        SseFinish(s, e);
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }
}
