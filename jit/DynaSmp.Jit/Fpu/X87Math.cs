using Iced.Intel;

namespace DynaSmp.Jit.Fpu;

/// <summary>Values of the x87 transcendental instructions with their special cases (SDM Vol. 2 FSIN..FYL2XP1 tables).</summary>
/// <remarks>Finite arguments are evaluated in double-double arithmetic (<see cref="DD"/>, about 106 bits, never the
/// host x87) and rounded once to 64 bits by FCW.RC, so results are within one ulp (nearly always correctly rounded),
/// which is the bound the SDM documents (Vol. 1 8.3.10). Hardware is not correctly rounded, so the last bit can differ
/// from a real CPU; sine/cosine/tangent of large arguments also differ because Intel reduces with a 66-bit pi.</remarks>
public static class X87Math
{
    const int IE = FpFlags.IE, DE = FpFlags.DE, ZE = FpFlags.ZE, PE = FpFlags.PE;
    static readonly Ext80 One = new(0x3FFF, Ext80.J);

    /// <summary>A finite non-zero value as m * 2^exp with m in [1, 2) held exactly in a DD.</summary>
    static DD Split(Ext80 a, out int exp)
    {
        SoftFloat80.Unpack(a, out int ex, out ulong sig);
        exp = ex - Ext80.Bias;
        var m = new DD(Math.ScaleB((double)(sig >> 11), -52), Math.ScaleB((double)(sig & 0x7FF), -63));
        return a.Sign ? -m : m;
    }

    /// <summary>Rounds v * 2^exp2 to 64 bits by FCW.RC. <paramref name="tail"/> -1/+1: the exact value is a hair smaller/larger
    /// in magnitude than v (for results that are their argument plus a term far below the DD's precision).
    /// <paramref name="canBeExact"/> false: the true value is irrational, so a DD that happens to end within 64 bits
    /// (its error hid the rest) is still inexact: PE is raised and rounding sees a non-zero remainder.</summary>
    static Ext80 Round(ref FpEnv e, DD v, int exp2, int tail = 0, bool canBeExact = true)
    {
        if (v.Hi == 0) return Ext80.Zero(double.IsNegative(v.Hi));
        bool sign = v.Hi < 0;
        if (sign) v = -v;
        int E = Math.ILogB(v.Hi);
        var H = (Int128)Math.ScaleB(v.Hi, 126 - E);
        double ls = Math.ScaleB(v.Lo, 126 - E), fl = Math.Floor(ls);
        Int128 M = H + (Int128)fl;
        bool sticky = ls != fl;
        if (!sticky && tail != 0)
        {
            if (tail < 0) M -= 1;
            sticky = true;
        }
        sticky |= !canBeExact;
        var mm = (UInt128)M | (sticky ? UInt128.One : UInt128.Zero);
        e.RoundedUp = false;
        return SoftFloat80.NormRoundPack(ref e, sign, E + exp2 + Ext80.Bias - 63, mm, 64);
    }

    static bool Special1(ref FpEnv e, Ext80 a, out Ext80 r)
    {
        if (a.IsUnsupported) { e.Flags |= IE; r = Ext80.Indefinite; return true; }
        if (a.IsNaN) { if (a.IsSNaN) e.Flags |= IE; r = a.Quiet(); return true; }
        if (a.IsDenormal) e.Flags |= DE;
        r = default;
        return false;
    }

    /// <summary>FSIN/FCOS: r0. FSINCOS: r0 = sine (ends in ST(1)), r1 = cosine (ST(0)). FPTAN: r0 = tangent, r1 = 1.</summary>
    public static void Trig(ref FpEnv e, Mnemonic m, Ext80 x, out Ext80 r0, out Ext80 r1)
    {
        r1 = m == Mnemonic.Fptan ? One : default;
        // A NaN result goes to both registers (FPTAN pushes the NaN rather than 1.0: observed).
        if (Special1(ref e, x, out var sp))
        {
            r0 = r1 = sp;
            return;
        }
        if (x.IsInf)
        {
            e.Flags |= IE;
            r0 = r1 = Ext80.Indefinite;
            return;
        }
        if (x.IsZero)
        {
            r0 = m == Mnemonic.Fcos ? One : x;
            if (m == Mnemonic.Fsincos) r1 = One;
            return;
        }
        DD mx = Split(x, out int ex);
        if (ex < -40)
        {
            // sin x = x - x^3/6, tan x = x + x^3/3, cos x = 1 - x^2/2: the correction is far below the last bit.
            r0 = m switch
            {
                Mnemonic.Fcos => Round(ref e, DD.One, 0, -1),
                Mnemonic.Fptan => Round(ref e, mx, ex, +1),
                _ => Round(ref e, mx, ex, -1),
            };
            if (m == Mnemonic.Fsincos) r1 = Round(ref e, DD.One, 0, -1);
            return;
        }
        DD.SinCos(DD.Scale(mx, ex), out var sin, out var cos);
        switch (m)
        {
            case Mnemonic.Fsin: r0 = Round(ref e, sin, 0); break;
            case Mnemonic.Fcos: r0 = Round(ref e, cos, 0); break;
            case Mnemonic.Fptan: r0 = Round(ref e, sin / cos, 0); break;
            default:
                r0 = Round(ref e, sin, 0);
                r1 = Round(ref e, cos, 0);
                break;
        }
    }

    /// <summary>F2XM1: 2^x - 1 for -1 &lt;= x &lt;= 1.</summary>
    public static Ext80 TwoXm1(ref FpEnv e, Ext80 x)
    {
        if (Special1(ref e, x, out var sp)) return sp;
        if (x.IsZero) return x;
        if (x.IsInf) return x.Sign ? One.Negate() : x;
        DD mx = Split(x, out int ex);
        if (ex < -900) return Round(ref e, mx * DD.Ln2, ex);
        if (ex > 10) ex = 10; // |x| > 1 is outside the defined range; keep the evaluation finite
        return Round(ref e, DD.Expm1(DD.Scale(mx, ex) * DD.Ln2), 0);
    }

    /// <summary>FPATAN: arctan(y / x) with the quadrant of (x, y), as atan2 (SDM FPATAN table).</summary>
    public static Ext80 Atan2(ref FpEnv e, Ext80 y, Ext80 x)
    {
        if (y.IsUnsupported || x.IsUnsupported) { e.Flags |= IE; return Ext80.Indefinite; }
        if (y.IsNaN || x.IsNaN) return SoftFloat80.PropagateNaN(ref e, y, x);
        if (y.IsDenormal || x.IsDenormal) e.Flags |= DE;
        if (y.IsZero && !x.Sign) return y; // x >= +0: ±0 exactly, sign of y
        DD q;
        if (y.IsZero) q = DD.Pi;           // x <= -0: ±pi
        else if (x.IsZero) q = DD.PiO2;
        else if (y.IsInf && x.IsInf) q = x.Sign ? DD.Pi - DD.PiO4 : DD.PiO4;
        else if (y.IsInf) q = DD.PiO2;
        else if (x.IsInf) { if (!x.Sign) return Ext80.Zero(y.Sign); q = DD.Pi; }
        else
        {
            DD my = Split(y.Abs(), out int ey), mx = Split(x.Abs(), out int ex);
            int d = ey - ex;
            if (d <= 0)
            {
                DD ratio = my / mx;
                DD a = d < -1000 ? DD.Scale(ratio, -1000) : DD.Atan(DD.Scale(ratio, d));
                // atan(t) is a hair below t in magnitude when t is so small that the DD could not see t^3/3.
                if (!x.Sign) return Round(ref e, y.Sign ? -a : a, d < -1000 ? d + 1000 : 0, tail: d < -1000 ? -1 : 0, canBeExact: false);
                q = DD.Pi - a;
            }
            else
            {
                DD ratio = mx / my;
                DD a = d > 1000 ? new DD(0) : DD.Atan(DD.Scale(ratio, -d));
                q = x.Sign ? DD.PiO2 + a : DD.PiO2 - a;
            }
        }
        return Round(ref e, y.Sign ? -q : q, 0, canBeExact: false); // every finite non-trivial case involves pi or atan
    }

    /// <summary>FYL2X: y * log2(x); FYL2XP1: y * log2(x + 1).</summary>
    public static Ext80 Yl2x(ref FpEnv e, Ext80 y, Ext80 x, bool plusOne)
    {
        if (y.IsUnsupported || x.IsUnsupported) { e.Flags |= IE; return Ext80.Indefinite; }
        if (y.IsNaN || x.IsNaN) return SoftFloat80.PropagateNaN(ref e, y, x);
        if (y.IsDenormal || x.IsDenormal) e.Flags |= DE;
        if (plusOne)
        {
            // +inf is outside the SDM's domain; hardware gives y * inf (observed), -inf is invalid.
            if (x.IsInf)
            {
                if (x.Sign || y.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
                return Ext80.Inf(y.Sign);
            }
            if (x.IsZero)
            {
                if (y.IsInf) { e.Flags |= IE; return Ext80.Indefinite; }
                return Ext80.Zero(x.Sign ^ y.Sign);
            }
            if (y.IsZero) return Ext80.Zero(x.Sign ^ y.Sign);
            if (y.IsInf) return Ext80.Inf(y.Sign ^ x.Sign);
            DD mx1 = Split(x, out int ex1), my1 = Split(y, out int ey1);
            DD l1 = ex1 < -900 ? mx1 / DD.Ln2 : DD.Log1p(DD.Scale(mx1, ex1)) / DD.Ln2;
            return Round(ref e, my1 * l1, ey1 + (ex1 < -900 ? ex1 : 0));
        }
        if (x.Sign && !x.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
        if (x.IsZero)
        {
            if (y.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
            // ZE takes priority over a denormal y, as for FDIV by zero (observed).
            if (!y.IsInf) e.Flags = (e.Flags | ZE) & ~DE;
            return Ext80.Inf(!y.Sign);
        }
        if (x.IsInf)
        {
            if (y.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
            return Ext80.Inf(y.Sign);
        }
        bool xIsOne = x.Exp == Ext80.Bias && x.Mant == Ext80.J;
        if (xIsOne)
        {
            if (y.IsInf) { e.Flags |= IE; return Ext80.Indefinite; }
            return Ext80.Zero(y.Sign);
        }
        bool below = x.Exp < Ext80.Bias;
        if (y.IsInf) return Ext80.Inf(y.Sign ^ below);
        if (y.IsZero) return Ext80.Zero(y.Sign ^ below);
        DD mxx = Split(x, out int k), myy = Split(y, out int ey);
        if (mxx.Hi > 1.5) { mxx = DD.Scale(mxx, -1); k++; }
        // Near 1, log(m) = log1p(m - 1) keeps the terms beyond the first that DD.Log loses (196 ulp at x = 1 + 7 * 2^-58).
        DD l = k == 0 && mxx.Hi < 1.25 ? DD.Log1p(mxx - DD.One) / DD.Ln2 : new DD(k) + DD.Log(mxx) / DD.Ln2;
        // Taken as inexact even when x is a power of two and y * log2(x) is exact: the SDM raises #P only for an inexact
        // result, but Intel (model 0xCF) and AMD (family 1Ah) parts raise PE, and UE when such a result is tiny.
        return Round(ref e, myy * l, ey, canBeExact: false);
    }
}
