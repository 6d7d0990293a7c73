using Iced.Intel;

namespace DynaSmp.Jit.Fpu;

/// <summary>Values of the x87 transcendental instructions with their special cases (SDM Vol. 2 FSIN..FYL2XP1 tables).</summary>
/// <remarks>Finite non-special arguments are evaluated in binary64 with .NET's Math (never the host x87), so results
/// carry about 53 correct bits rather than the SDM's bound of one ulp of the 64-bit significand; PE is always raised
/// for them, with C1 clear.</remarks>
public static class X87Math
{
    const int IE = FpFlags.IE, DE = FpFlags.DE, ZE = FpFlags.ZE, PE = FpFlags.PE;
    static readonly Ext80 One = new(0x3FFF, Ext80.J);

    static double ToDouble(Ext80 a)
    {
        var t = new FpEnv { Masks = 0x3F, Pc = 64 };
        return BitConverter.UInt64BitsToDouble(SoftFloat80.ToF64(ref t, a));
    }

    static Ext80 FromDouble(ref FpEnv e, double d)
    {
        var t = new FpEnv();
        var r = SoftFloat80.FromF64(ref t, BitConverter.DoubleToUInt64Bits(d));
        e.Flags |= PE;
        e.RoundedUp = false;
        return r;
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
        if (Special1(ref e, x, out var sp))
        {
            r0 = sp;
            if (m == Mnemonic.Fsincos) r1 = sp;
            return;
        }
        if (x.IsInf)
        {
            e.Flags |= IE;
            r0 = Ext80.Indefinite;
            if (m == Mnemonic.Fsincos) r1 = Ext80.Indefinite;
            return;
        }
        if (x.IsZero)
        {
            r0 = m == Mnemonic.Fcos ? One : x;
            if (m == Mnemonic.Fsincos) r1 = One;
            return;
        }
        double d = ToDouble(x);
        switch (m)
        {
            case Mnemonic.Fsin: r0 = FromDouble(ref e, Math.Sin(d)); break;
            case Mnemonic.Fcos: r0 = FromDouble(ref e, Math.Cos(d)); break;
            case Mnemonic.Fptan: r0 = FromDouble(ref e, Math.Tan(d)); break;
            default:
                r0 = FromDouble(ref e, Math.Sin(d));
                r1 = FromDouble(ref e, Math.Cos(d));
                break;
        }
    }

    /// <summary>F2XM1: 2^x - 1 for -1 &lt;= x &lt;= 1.</summary>
    public static Ext80 TwoXm1(ref FpEnv e, Ext80 x)
    {
        if (Special1(ref e, x, out var sp)) return sp;
        if (x.IsZero) return x;
        if (x.IsInf) return x.Sign ? One.Negate() : x;
        double d = ToDouble(x);
        return FromDouble(ref e, Math.Abs(d) < 1e-3 ? Math.Log(2) * d * (1 + d * Math.Log(2) / 2) + 0 * Math.Exp(d) : Math.Pow(2, d) - 1);
    }

    /// <summary>FPATAN: arctan(y / x) with the quadrant of (x, y), as atan2 (SDM FPATAN table).</summary>
    public static Ext80 Atan2(ref FpEnv e, Ext80 y, Ext80 x)
    {
        if (y.IsUnsupported || x.IsUnsupported) { e.Flags |= IE; return Ext80.Indefinite; }
        if (y.IsNaN || x.IsNaN) return SoftFloat80.PropagateNaN(ref e, y, x);
        if (y.IsDenormal || x.IsDenormal) e.Flags |= DE;
        double r = Math.Atan2(ToDouble(y), ToDouble(x));
        if (y.IsZero && (x.IsZero || !x.Sign)) return y; // ±0 exactly, sign of y
        return FromDouble(ref e, r);
    }

    /// <summary>FYL2X: y * log2(x); FYL2XP1: y * log2(x + 1).</summary>
    public static Ext80 Yl2x(ref FpEnv e, Ext80 y, Ext80 x, bool plusOne)
    {
        if (y.IsUnsupported || x.IsUnsupported) { e.Flags |= IE; return Ext80.Indefinite; }
        if (y.IsNaN || x.IsNaN) return SoftFloat80.PropagateNaN(ref e, y, x);
        if (y.IsDenormal || x.IsDenormal) e.Flags |= DE;
        if (plusOne)
        {
            if (x.IsInf) { e.Flags |= IE; return Ext80.Indefinite; }
            if (x.IsZero)
            {
                if (y.IsInf) { e.Flags |= IE; return Ext80.Indefinite; }
                return Ext80.Zero(x.Sign ^ y.Sign);
            }
            if (y.IsZero) return Ext80.Zero(x.Sign ^ y.Sign);
            double lp = double.LogP1(ToDouble(x)) / Math.Log(2);
            if (y.IsInf) return Ext80.Inf(y.Sign ^ lp < 0);
            return FromDouble(ref e, ToDouble(y) * lp);
        }
        if (x.Sign && !x.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
        if (x.IsZero)
        {
            if (y.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
            if (!y.IsInf) e.Flags |= ZE;
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
        return FromDouble(ref e, ToDouble(y) * Math.Log2(ToDouble(x)));
    }
}
