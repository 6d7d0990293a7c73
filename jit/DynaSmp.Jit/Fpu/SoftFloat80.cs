using System.Numerics;
using System.Runtime.CompilerServices;

namespace DynaSmp.Jit.Fpu;

/// <summary>Exception flag bits, as in the low six bits of FSW/FCW and MXCSR (SDM Vol. 1 8.1.3, 10.2.3).</summary>
public static class FpFlags
{
    public const int IE = 1, DE = 2, ZE = 4, OE = 8, UE = 16, PE = 32;
    /// <summary>Exceptions that, unmasked, leave the destination and the stack untouched (SDM Vol. 1 8.5).</summary>
    public const int PreComputation = IE | DE | ZE;
}

/// <summary>Rounding modes, encoded as FCW.RC and MXCSR.RC.</summary>
public static class Rounding
{
    public const int Nearest = 0, Down = 1, Up = 2, Zero = 3;
}

/// <summary>The environment of one x87 operation: rounding mode and precision from FCW, the masks (they decide the
/// unmasked overflow/underflow responses), and what the operation raised.</summary>
public struct FpEnv
{
    public int Rc;
    /// <summary>Significand precision in bits (FCW.PC: 24, 53 or 64); used by the arithmetic that PC governs.</summary>
    public int Pc;
    public int Masks;
    public int Flags;
    /// <summary>The last rounding increased the magnitude (reported in C1 with PE, SDM Vol. 1 8.1.3.3).</summary>
    public bool RoundedUp;
    /// <summary>0 for x87; 32 or 64 for an SSE single/double result (rounded to that format's precision and range,
    /// NaNs propagated by the SSE rules, MXCSR.FTZ applied).</summary>
    public int Format;
    public bool Ftz;

    public static FpEnv FromControl(ushort fcw) => new()
    {
        Rc = (fcw >> 10) & 3,
        Pc = ((fcw >> 8) & 3) switch { 0 => 24, 2 => 53, _ => 64 }, // PC = 01 is reserved; treated as 64
        Masks = fcw & 0x3F,
    };
}

/// <summary>
/// Software double extended-precision arithmetic, written for DynaSmp after the SDM's definitions (Vol. 1 chapters 4
/// and 8): every result is computed exactly (or with a sticky bit) in 128-bit integers and rounded once, so results
/// match the hardware bit for bit without using the host's x87.
/// </summary>
/// <remarks>A finite non-zero operand is unpacked into (sign, exp, sig) with sig normalised (bit 63 set) and value
/// sig * 2^(exp - 16383 - 63); denormals get exp &lt; 1. Results go through <see cref="RoundCore"/>, which handles
/// precision, the four rounding modes, denormalisation, and the masked and unmasked overflow/underflow responses.
/// The operations x87 code runs are AggressiveOptimization: compiled code reaches them from its first run (Interp.X87Fast*),
/// and in .NET's tier 0 a short program ran them unoptimised for most of its life (fpprint, median of 3: 0.57 -> 0.44 s).</remarks>
public static class SoftFloat80
{
    const int IE = FpFlags.IE, DE = FpFlags.DE, ZE = FpFlags.ZE, OE = FpFlags.OE, UE = FpFlags.UE, PE = FpFlags.PE;
    const ulong J = Ext80.J;
    /// <summary>Exponent adjustment applied to the result delivered with an unmasked overflow/underflow (SDM Vol. 1 8.5.3/8.5.4).</summary>
    public const int UnmaskedBias = 24576;

    /// <summary>x86 detects tininess after rounding (SDM Vol. 1 4.9.1.5: "tiny" is judged on the rounded result with an unbounded exponent).</summary>
    public static bool TininessBeforeRounding;

    // ---------------- rounding ----------------

    /// <summary>Rounds sig:extra (a 128-bit significand, binary point after bit 63 of sig) to keep the top 64-drop bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong RoundBits(ulong sig, ulong extra, int drop, int rc, bool sign, out bool carry, out bool inexact, out bool up)
    {
        ulong kept;
        bool roundBit, sticky;
        if (drop == 0)
        {
            kept = sig;
            roundBit = (extra >> 63) != 0;
            sticky = (extra << 1) != 0;
        }
        else
        {
            ulong mask = (1UL << drop) - 1;
            kept = sig & ~mask;
            ulong rem = sig & mask;
            roundBit = ((rem >> (drop - 1)) & 1) != 0;
            sticky = (rem & (mask >> 1)) != 0 || extra != 0;
        }
        inexact = roundBit || sticky;
        bool inc = rc switch
        {
            Rounding.Nearest => roundBit && (sticky || ((kept >> drop) & 1) != 0),
            Rounding.Down => inexact && sign,
            Rounding.Up => inexact && !sign,
            _ => false,
        };
        up = inc;
        carry = false;
        if (inc)
        {
            ulong n = kept + (1UL << drop);
            carry = n < kept;
            kept = n;
        }
        return kept;
    }

    /// <summary>Shifts sig:extra right by n, keeping any lost bit as a sticky 1 in the lowest bit.</summary>
    static void ShiftRightJam(ref ulong sig, ref ulong extra, int n)
    {
        if (n <= 0) return;
        UInt128 v = ((UInt128)sig << 64) | extra;
        if (n >= 128) v = v != 0 ? 1u : 0u;
        else
        {
            bool lost = (v & ((UInt128.One << n) - 1)) != 0;
            v >>= n;
            if (lost) v |= 1;
        }
        sig = (ulong)(v >> 64);
        extra = (ulong)v;
    }

    /// <summary>
    /// Rounds sign * sig:extra * 2^(exp-16383-63) (sig normalised) to p significand bits in a format whose normal
    /// exponents (in the 80-bit bias) are expMin..expMax. On return a denormal result has exp = expMin with J clear,
    /// a zero has sig = 0, an infinity has exp = expMax + 1. <paramref name="regDest"/>: the destination is an x87
    /// register, so unmasked overflow/underflow deliver the result with the exponent adjusted by 24576; for a memory
    /// destination they deliver nothing (the caller sees OE/UE unmasked and does not store).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RoundCore(ref FpEnv e, bool sign, ref int exp, ref ulong sig, ulong extra, int p, int expMin, int expMax, bool regDest)
    {
        int drop = 64 - p;
        bool inexact, up, carry;
        ulong r;
        if (exp < expMin)
        {
            bool tiny = true;
            if (!TininessBeforeRounding && exp == expMin - 1)
            {
                RoundBits(sig, extra, drop, e.Rc, sign, out carry, out _, out _);
                tiny = !carry;
            }
            bool unmaskedTiny = tiny && (e.Masks & UE) == 0;
            if (unmaskedTiny)
            {
                e.Flags |= UE;
                if (!regDest) return;
                exp += UnmaskedBias;
                if (exp < expMin)
                {
                    // Still below the range after the bias (only FSCALE gets this far): a signed zero, inexact, not
                    // rounded up whatever the rounding mode (observed).
                    e.Flags |= PE;
                    e.RoundedUp = false;
                    sig = 0;
                    return;
                }
            }
            else
            {
                ShiftRightJam(ref sig, ref extra, expMin - exp);
                exp = expMin;
                r = RoundBits(sig, extra, drop, e.Rc, sign, out carry, out inexact, out up);
                if (carry) r = J; // cannot happen: sig < 2^63 after a shift of at least 1
                sig = r;
                if (inexact)
                {
                    e.Flags |= PE | (tiny ? UE : 0);
                    e.RoundedUp = up;
                }
                return;
            }
        }
        r = RoundBits(sig, extra, drop, e.Rc, sign, out carry, out inexact, out up);
        if (carry)
        {
            r = J;
            exp++;
        }
        if (exp > expMax)
        {
            if ((e.Masks & OE) == 0)
            {
                // A memory destination is left alone and only OE is reported (no PE, C1 clear: observed).
                if (!regDest)
                {
                    e.Flags |= OE;
                    e.RoundedUp = false;
                    return;
                }
                e.Flags |= OE | (inexact ? PE : 0);
                e.RoundedUp = up;
                exp -= UnmaskedBias;
                sig = r;
                if (exp > expMax)
                {
                    // Still too large after the bias (FSCALE): infinity, inexact and rounded up (observed).
                    exp = expMax + 1;
                    sig = J;
                    e.Flags |= PE;
                    e.RoundedUp = true;
                }
                return;
            }
            e.Flags |= OE | PE;
            bool toInf = e.Rc == Rounding.Nearest || (e.Rc == Rounding.Up && !sign) || (e.Rc == Rounding.Down && sign);
            if (toInf) { exp = expMax + 1; sig = J; }
            else { exp = expMax; sig = ~0UL << drop; }
            e.RoundedUp = toInf;
            return;
        }
        sig = r;
        if (inexact)
        {
            e.Flags |= PE;
            e.RoundedUp = up;
        }
    }

    /// <summary>Rounds to an x87 register value with precision p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 RoundPack(ref FpEnv e, bool sign, int exp, ulong sig, ulong extra, int p)
    {
        if (e.Format != 0) return RoundPackSse(ref e, sign, exp, sig, extra);
        RoundCore(ref e, sign, ref exp, ref sig, extra, p, 1, 0x7FFE, regDest: true);
        if (sig == 0) return Ext80.Zero(sign);
        if ((sig & J) == 0) exp = 0;
        return new Ext80((ushort)((sign ? 0x8000 : 0) | (exp & 0x7FFF)), sig);
    }

    /// <summary>An SSE result: rounded once to single or double precision and range; with unmasked overflow/underflow
    /// the caller raises #XM and stores nothing. FTZ turns a masked underflow into a signed zero (UE and PE, SDM Vol. 1
    /// 10.2.3.3). The value is returned as the extended value that represents it exactly.</summary>
    static Ext80 RoundPackSse(ref FpEnv e, bool sign, int exp, ulong sig, ulong extra)
    {
        bool single = e.Format == 32;
        int p = single ? 24 : 53, expMin = single ? Ext80.Bias - 126 : Ext80.Bias - 1022, expMax = single ? Ext80.Bias + 127 : Ext80.Bias + 1023;
        if (e.Ftz && (e.Masks & UE) != 0 && exp < expMin)
        {
            // Tiny before or after rounding decides the same way here unless the value rounds up to the smallest normal.
            int ex2 = exp;
            ulong s2 = sig;
            var probe = e;
            probe.Masks |= UE;
            RoundCore(ref probe, sign, ref ex2, ref s2, extra, p, expMin, expMax, regDest: false);
            if (s2 == 0 || (s2 & J) == 0 || (probe.Flags & UE) != 0)
            {
                e.Flags |= UE | PE;
                return Ext80.Zero(sign);
            }
        }
        RoundCore(ref e, sign, ref exp, ref sig, extra, p, expMin, expMax, regDest: false);
        if (sig == 0) return Ext80.Zero(sign);
        if (exp > expMax) return Ext80.Inf(sign);
        int lz = BitOperations.LeadingZeroCount(sig);
        return new Ext80((ushort)((sign ? 0x8000 : 0) | (exp - lz)), sig << lz);
    }

    /// <summary>Rounds a 128-bit magnitude m * 2^(exp - 16383 - 63) (m != 0) after normalising it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 NormRoundPack(ref FpEnv e, bool sign, int exp, UInt128 m, int p)
    {
        int lz = (int)UInt128.LeadingZeroCount(m);
        m <<= lz;
        return RoundPack(ref e, sign, exp + 64 - lz, (ulong)(m >> 64), (ulong)m, p);
    }

    // ---------------- operands ----------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unpack(Ext80 a, out int exp, out ulong sig)
    {
        exp = a.Exp;
        sig = a.Mant;
        if (exp == 0)
        {
            int lz = BitOperations.LeadingZeroCount(sig);
            sig <<= lz;
            exp = 1 - lz;
        }
    }

    /// <summary>The x87 NaN rules (SDM Vol. 1 Table 4-7): an SNaN raises IE and is quieted; of an SNaN and a QNaN the
    /// QNaN wins; of two NaNs of the same kind the one with the larger significand.</summary>
    public static Ext80 PropagateNaN(ref FpEnv e, Ext80 a, Ext80 b)
    {
        bool sa = a.IsSNaN, sb = b.IsSNaN;
        if (sa || sb) e.Flags |= IE;
        if (e.Format != 0) return (a.IsNaN ? a : b).Quiet(); // SSE: the first source NaN wins (SDM Vol. 1 Table 4-7)
        if (a.IsNaN && b.IsNaN)
        {
            if (sa != sb) return sa ? b : a;
            if (a.Mant != b.Mant) return (a.Mant > b.Mant ? a : b).Quiet();
            return (a.Se < b.Se ? a : b).Quiet();
        }
        return (a.IsNaN ? a : b).Quiet();
    }

    /// <summary>Unsupported formats and NaNs decide the result of a two-operand operation on their own.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Special2(ref FpEnv e, Ext80 a, Ext80 b, out Ext80 r)
    {
        if (a.IsUnsupported || b.IsUnsupported) { e.Flags |= IE; r = Ext80.Indefinite; return true; }
        if (a.IsNaN || b.IsNaN) { r = PropagateNaN(ref e, a, b); return true; }
        if (a.IsDenormal || b.IsDenormal) e.Flags |= DE;
        r = default;
        return false;
    }

    static bool Special1(ref FpEnv e, Ext80 a, out Ext80 r)
    {
        if (a.IsUnsupported) { e.Flags |= IE; r = Ext80.Indefinite; return true; }
        if (a.IsNaN)
        {
            if (a.IsSNaN) e.Flags |= IE;
            r = a.Quiet();
            return true;
        }
        if (a.IsDenormal) e.Flags |= DE;
        r = default;
        return false;
    }

    static Ext80 Round1(ref FpEnv e, Ext80 a, int p)
    {
        Unpack(a, out int ex, out ulong s);
        return RoundPack(ref e, a.Sign, ex, s, 0, p);
    }

    // ---------------- arithmetic ----------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 Add(ref FpEnv e, Ext80 a, Ext80 b, bool subtract)
    {
        if (Special2(ref e, a, b, out var r)) return r;
        if (subtract) b = b.Negate();
        if (a.IsInf || b.IsInf)
        {
            if (a.IsInf && b.IsInf && a.Sign != b.Sign) { e.Flags |= IE; return Ext80.Indefinite; }
            return a.IsInf ? a : b;
        }
        bool az = a.IsZero, bz = b.IsZero;
        if (az && bz) return Ext80.Zero(a.Sign == b.Sign ? a.Sign : e.Rc == Rounding.Down);
        if (az) return Round1(ref e, b, e.Pc);
        if (bz) return Round1(ref e, a, e.Pc);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        bool sa = a.Sign, sb = b.Sign;
        if (ea < eb || (ea == eb && ma < mb))
        {
            (ea, eb) = (eb, ea);
            (ma, mb) = (mb, ma);
            (sa, sb) = (sb, sa);
        }
        UInt128 A = (UInt128)ma << 62;
        ulong bh = mb >> 2, bl = mb << 62;
        ShiftRightJam(ref bh, ref bl, ea - eb);
        UInt128 B = ((UInt128)bh << 64) | bl;
        UInt128 S = sa == sb ? A + B : A - B;
        if (S == 0) return Ext80.Zero(e.Rc == Rounding.Down);
        return NormRoundPack(ref e, sa, ea + 2 - 64, S, e.Pc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 Mul(ref FpEnv e, Ext80 a, Ext80 b)
    {
        if (Special2(ref e, a, b, out var r)) return r;
        bool sign = a.Sign ^ b.Sign;
        if (a.IsInf || b.IsInf)
        {
            if (a.IsZero || b.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
            return Ext80.Inf(sign);
        }
        if (a.IsZero || b.IsZero) return Ext80.Zero(sign);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        UInt128 P = (UInt128)ma * mb;
        return NormRoundPack(ref e, sign, ea + eb - Ext80.Bias + 1 - 64, P, e.Pc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 Div(ref FpEnv e, Ext80 a, Ext80 b)
    {
        bool sign = a.Sign ^ b.Sign;
        // A zero divisor is detected before a denormal dividend: x/0 raises ZE alone (observed).
        if (b.IsZero && !a.IsZero && !a.IsInf && !a.IsNaN && !a.IsUnsupported)
        {
            e.Flags |= ZE;
            return Ext80.Inf(sign);
        }
        if (Special2(ref e, a, b, out var r)) return r;
        if (a.IsInf)
        {
            if (b.IsInf) { e.Flags |= IE; return Ext80.Indefinite; }
            return Ext80.Inf(sign);
        }
        if (b.IsInf) return Ext80.Zero(sign);
        if (b.IsZero)
        {
            if (a.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
            e.Flags |= ZE;
            return Ext80.Inf(sign);
        }
        if (a.IsZero) return Ext80.Zero(sign);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        int exp = ea - eb + Ext80.Bias;
        UInt128 n;
        if (ma >= mb) n = (UInt128)ma << 63;
        else { n = (UInt128)ma << 64; exp--; }
        // Both quotients fit 64 bits (n < mb * 2^64, and r1 < mb), so each step is one 128-by-64 division.
        ulong q1 = DivRem128By64((ulong)(n >> 64), (ulong)n, mb, out ulong r1);
        ulong q2 = DivRem128By64(r1, 0, mb, out ulong r2);
        bool sticky = r2 != 0;
        return RoundPack(ref e, sign, exp, q1, q2 | (sticky ? 1UL : 0), e.Pc);
    }

    /// <summary>(hi:lo) / d and its remainder, for hi &lt; d (the quotient fits 64 bits): schoolbook division in two
    /// 64-by-32-bit digit steps after normalising d (Knuth, TAOCP vol. 2, 4.3.1, Algorithm D). UInt128's general
    /// division was 1.2% of an x87 printf workload's samples, and ran as .NET tier-0 code.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong DivRem128By64(ulong hi, ulong lo, ulong d, out ulong rem)
    {
        const ulong Digit = 1UL << 32;
        int s = System.Numerics.BitOperations.LeadingZeroCount(d);
        d <<= s;
        ulong dHigh = d >> 32, dLow = (uint)d;
        ulong top = s == 0 ? hi : (hi << s) | (lo >> (64 - s)); // the dividend's top 64 bits, normalised
        lo <<= s;
        ulong n1 = lo >> 32, n0 = (uint)lo;
        // First quotient digit: estimate from the top digits, then correct (at most twice).
        ulong q1 = top / dHigh, r = top - q1 * dHigh;
        while (q1 >= Digit || q1 * dLow > (r << 32 | n1))
        {
            q1--;
            r += dHigh;
            if (r >= Digit) break;
        }
        ulong mid = (top << 32 | n1) - q1 * d; // wraps to the true partial remainder, which is below d
        ulong q0 = mid / dHigh;
        r = mid - q0 * dHigh;
        while (q0 >= Digit || q0 * dLow > (r << 32 | n0))
        {
            q0--;
            r += dHigh;
            if (r >= Digit) break;
        }
        rem = ((mid << 32 | n0) - q0 * d) >> s;
        return q1 << 32 | q0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 Sqrt(ref FpEnv e, Ext80 a, int p)
    {
        if (Special1(ref e, a, out var r)) return r;
        if (a.IsZero) return a;
        if (a.Sign) { e.Flags |= IE; return Ext80.Indefinite; }
        if (a.IsInf) return a;
        Unpack(a, out int ea, out ulong ma);
        int E = ea - Ext80.Bias;
        int sh = (E & 1) == 0 ? 67 : 68; // radicand ma * 2^sh: the root is a 66-bit integer in [2^65, 2^66)
        UInt128 rem = 0, root = 0;
        for (int j = 130; j >= 0; j -= 2)
        {
            int b1 = j + 1 - sh, b0 = j - sh;
            ulong pair = (b1 >= 0 && b1 < 64 ? ((ma >> b1) & 1) << 1 : 0) | (b0 >= 0 && b0 < 64 ? (ma >> b0) & 1 : 0);
            rem = (rem << 2) | pair;
            UInt128 trial = (root << 2) | 1;
            root <<= 1;
            if (rem >= trial) { rem -= trial; root |= 1; }
        }
        ulong sig = (ulong)(root >> 2);
        ulong extra = ((ulong)root & 3) << 62 | (rem != 0 ? 1UL : 0);
        return RoundPack(ref e, false, (E >> 1) + Ext80.Bias, sig, extra, p);
    }

    /// <summary>Rounds a finite value to an integer magnitude by mode rc. Returns false when |value| &gt;= 2^64.</summary>
    public static bool RoundToInteger(bool sign, int exp, ulong sig, int rc, out ulong mag, out bool inexact, out bool up)
    {
        int shift = Ext80.Bias + 63 - exp; // fraction bits
        mag = 0; inexact = false; up = false;
        if (shift < 0) return false;
        bool roundBit, sticky;
        ulong ip;
        if (shift == 0) { ip = sig; roundBit = sticky = false; }
        else if (shift < 64) { ip = sig >> shift; ulong f = sig << (64 - shift); roundBit = (f >> 63) != 0; sticky = (f << 1) != 0; }
        else if (shift == 64) { ip = 0; roundBit = (sig >> 63) != 0; sticky = (sig << 1) != 0; }
        else { ip = 0; roundBit = false; sticky = sig != 0; }
        inexact = roundBit || sticky;
        bool inc = rc switch
        {
            Rounding.Nearest => roundBit && (sticky || (ip & 1) != 0),
            Rounding.Down => inexact && sign,
            Rounding.Up => inexact && !sign,
            _ => false,
        };
        if (inc)
        {
            ip++;
            if (ip == 0) return false;
        }
        up = inc;
        mag = ip;
        return true;
    }

    /// <summary>FRNDINT: round to an integral value by FCW.RC (precision control does not apply).</summary>
    public static Ext80 RoundInt(ref FpEnv e, Ext80 a)
    {
        if (Special1(ref e, a, out var r)) return r;
        if (a.IsZero || a.IsInf) return a;
        Unpack(a, out int ea, out ulong ma);
        if (ea >= Ext80.Bias + 63) return new Ext80(a.Se, ma);
        RoundToInteger(a.Sign, ea, ma, e.Rc, out ulong mag, out bool inexact, out bool up);
        if (inexact) { e.Flags |= PE; e.RoundedUp = up; }
        if (mag == 0) return Ext80.Zero(a.Sign);
        return FromMagnitude(a.Sign, mag);
    }

    public static Ext80 FromMagnitude(bool sign, ulong mag)
    {
        if (mag == 0) return Ext80.Zero(sign);
        int lz = BitOperations.LeadingZeroCount(mag);
        return new Ext80((ushort)((sign ? 0x8000 : 0) | (Ext80.Bias + 63 - lz)), mag << lz);
    }

    public static Ext80 FromInt64(long v) => v < 0 ? FromMagnitude(true, (ulong)-v) : FromMagnitude(false, (ulong)v);

    /// <summary>Converts to a signed integer of <paramref name="bits"/> bits by mode rc (FIST/FISTP; FISTTP passes
    /// Rounding.Zero). Invalid (NaN, infinity, out of range) raises IE and yields the integer indefinite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long ToInt(ref FpEnv e, Ext80 a, int bits, int rc)
    {
        long indefinite = bits == 64 ? long.MinValue : -(1L << (bits - 1));
        if (a.IsUnsupported || a.IsNaN || a.IsInf) { e.Flags |= IE; return indefinite; }
        if (a.IsZero) return 0;
        // No DE here: FIST/FISTP/FISTTP list only #IA and #P (SDM), and hardware agrees.
        Unpack(a, out int ea, out ulong ma);
        if (!RoundToInteger(a.Sign, ea, ma, rc, out ulong mag, out bool inexact, out bool up)) { e.Flags |= IE; return indefinite; }
        ulong limit = a.Sign ? 1UL << (bits - 1) : (1UL << (bits - 1)) - 1;
        if (mag > limit) { e.Flags |= IE; return indefinite; }
        if (inexact) { e.Flags |= PE; e.RoundedUp = up; }
        return a.Sign ? -(long)mag : (long)mag;
    }

    // ---------------- conversions to and from memory formats ----------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 FromF32(ref FpEnv e, uint v)
    {
        bool sign = (v >> 31) != 0;
        int ex = (int)(v >> 23) & 0xFF;
        ulong frac = v & 0x7F_FFFF;
        if (ex == 0xFF)
        {
            if (frac == 0) return Ext80.Inf(sign);
            if ((frac & 0x40_0000) == 0) e.Flags |= IE;
            return new Ext80((ushort)(sign ? 0xFFFF : 0x7FFF), J | Ext80.QuietBit | (frac << 40));
        }
        if (ex == 0)
        {
            if (frac == 0) return Ext80.Zero(sign);
            e.Flags |= DE;
            int lz = BitOperations.LeadingZeroCount(frac << 40);
            return new Ext80((ushort)((sign ? 0x8000 : 0) | (Ext80.Bias - 126 - lz)), (frac << 40) << lz);
        }
        return new Ext80((ushort)((sign ? 0x8000 : 0) | (ex - 127 + Ext80.Bias)), J | (frac << 40));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static Ext80 FromF64(ref FpEnv e, ulong v)
    {
        bool sign = (v >> 63) != 0;
        int ex = (int)(v >> 52) & 0x7FF;
        ulong frac = v & 0xF_FFFF_FFFF_FFFF;
        if (ex == 0x7FF)
        {
            if (frac == 0) return Ext80.Inf(sign);
            if ((frac & 0x8_0000_0000_0000) == 0) e.Flags |= IE;
            return new Ext80((ushort)(sign ? 0xFFFF : 0x7FFF), J | Ext80.QuietBit | (frac << 11));
        }
        if (ex == 0)
        {
            if (frac == 0) return Ext80.Zero(sign);
            e.Flags |= DE;
            int lz = BitOperations.LeadingZeroCount(frac << 11);
            return new Ext80((ushort)((sign ? 0x8000 : 0) | (Ext80.Bias - 1022 - lz)), (frac << 11) << lz);
        }
        return new Ext80((ushort)((sign ? 0x8000 : 0) | (ex - 1023 + Ext80.Bias)), J | (frac << 11));
    }

    /// <summary>FST m32: rounds by FCW.RC to single precision. With unmasked IE/OE/UE the caller stores nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint ToF32(ref FpEnv e, Ext80 a)
    {
        uint s = a.Sign ? 0x8000_0000u : 0;
        if (a.IsUnsupported) { e.Flags |= IE; return 0xFFC0_0000; }
        if (a.IsNaN)
        {
            if (a.IsSNaN) e.Flags |= IE;
            return s | 0x7FC0_0000 | (uint)((a.Mant >> 40) & 0x7F_FFFF);
        }
        if (a.IsInf) return s | 0x7F80_0000;
        if (a.IsZero) return s;
        Unpack(a, out int ex, out ulong sig); // a denormal source raises no DE (observed; the SDM lists no #D for FST)
        RoundCore(ref e, a.Sign, ref ex, ref sig, 0, 24, Ext80.Bias - 126, Ext80.Bias + 127, regDest: false);
        if (sig == 0) return s;
        uint field = (sig & J) == 0 ? 0 : (uint)(ex - (Ext80.Bias - 127));
        return s | field << 23 | (uint)((sig >> 40) & 0x7F_FFFF);
    }

    /// <summary>FST m64: rounds by FCW.RC to double precision.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ulong ToF64(ref FpEnv e, Ext80 a)
    {
        ulong s = a.Sign ? 1UL << 63 : 0;
        if (a.IsUnsupported) { e.Flags |= IE; return 0xFFF8_0000_0000_0000; }
        if (a.IsNaN)
        {
            if (a.IsSNaN) e.Flags |= IE;
            return s | 0x7FF8_0000_0000_0000 | ((a.Mant >> 11) & 0xF_FFFF_FFFF_FFFF);
        }
        if (a.IsInf) return s | 0x7FF0_0000_0000_0000;
        if (a.IsZero) return s;
        Unpack(a, out int ex, out ulong sig); // a denormal source raises no DE (observed; the SDM lists no #D for FST)
        RoundCore(ref e, a.Sign, ref ex, ref sig, 0, 53, Ext80.Bias - 1022, Ext80.Bias + 1023, regDest: false);
        if (sig == 0) return s;
        ulong field = (sig & J) == 0 ? 0 : (ulong)(ex - (Ext80.Bias - 1023));
        return s | field << 52 | ((sig >> 11) & 0xF_FFFF_FFFF_FFFF);
    }

    // ---------------- comparisons and classification ----------------

    /// <summary>Compares a with b: -1 less, 0 equal, 1 greater, 2 unordered. <paramref name="quiet"/> (FUCOM*):
    /// only SNaNs and unsupported formats raise IE; otherwise any NaN does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Compare(ref FpEnv e, Ext80 a, Ext80 b, bool quiet)
    {
        if (a.IsUnsupported || b.IsUnsupported) { e.Flags |= IE; return 2; }
        if (a.IsNaN || b.IsNaN)
        {
            if (!quiet || a.IsSNaN || b.IsSNaN) e.Flags |= IE;
            return 2;
        }
        if (a.IsDenormal || b.IsDenormal) e.Flags |= DE;
        bool az = a.IsZero, bz = b.IsZero;
        if (az && bz) return 0;
        if (az) return b.Sign ? 1 : -1;
        if (bz) return a.Sign ? -1 : 1;
        if (a.Sign != b.Sign) return a.Sign ? -1 : 1;
        int mag = CompareMagnitude(a, b);
        return a.Sign ? -mag : mag;
    }

    static int CompareMagnitude(Ext80 a, Ext80 b)
    {
        if (a.IsInf) return b.IsInf ? 0 : 1;
        if (b.IsInf) return -1;
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        if (ea != eb) return ea < eb ? -1 : 1;
        return ma == mb ? 0 : ma < mb ? -1 : 1;
    }

    /// <summary>FXAM's C3,C2,C0 class (SDM FXAM table) of a non-empty register; C1 is the sign.</summary>
    public static int ExamineClass(Ext80 a)
    {
        const int C0 = 1, C2 = 4, C3 = 0x40;
        if (a.IsUnsupported) return 0;
        if (a.Exp == Ext80.MaxExp) return (a.Mant << 1) == 0 ? C2 | C0 : C0;
        if (a.IsZero) return C3;
        if (a.Exp == 0) return C3 | C2;
        return C2;
    }

    // ---------------- FSCALE, FXTRACT, FPREM ----------------

    /// <summary>FSCALE: a * 2^trunc(b) (SDM FSCALE table for the special cases).</summary>
    public static Ext80 Scale(ref FpEnv e, Ext80 a, Ext80 b)
    {
        if (Special2(ref e, a, b, out var r)) return r;
        if (b.IsInf)
        {
            if (a.IsZero) { if (!b.Sign) { e.Flags |= IE; return Ext80.Indefinite; } return a; }
            if (a.IsInf) { if (b.Sign) { e.Flags |= IE; return Ext80.Indefinite; } return a; }
            return b.Sign ? Ext80.Zero(a.Sign) : Ext80.Inf(a.Sign);
        }
        if (a.IsZero || a.IsInf) return a;
        Unpack(a, out int ea, out ulong ma);
        int n = 0;
        if (!b.IsZero)
        {
            Unpack(b, out int eb, out ulong mb);
            if (eb >= Ext80.Bias + 63) n = 1 << 20;
            else
            {
                RoundToInteger(b.Sign, eb, mb, Rounding.Zero, out ulong mag, out _, out _);
                n = (int)Math.Min(mag, 1UL << 20); // anything beyond 2^20 is out of every range already
            }
            if (b.Sign) n = -n;
        }
        // Scaled by a zero ST(1), a denormal is passed through: no UE even unmasked on Intel (model 0xCF), as for FPREM by
        // inf. A nonzero ST(1) that truncates to 0 (a denormal: DE) takes the normal path and underflows there.
        if (b.IsZero && a.IsDenormal && (a.Mant & Ext80.J) == 0) return a;
        return RoundPack(ref e, a.Sign, ea + n, ma, 0, 64);
    }

    /// <summary>FXTRACT: the exponent (as a value) and the significand with exponent 0.</summary>
    public static void Extract(ref FpEnv e, Ext80 a, out Ext80 exponent, out Ext80 significand)
    {
        if (Special1(ref e, a, out var r)) { exponent = significand = r; return; }
        if (a.IsZero)
        {
            e.Flags |= ZE;
            exponent = Ext80.Inf(true);
            significand = a;
            return;
        }
        if (a.IsInf) { exponent = Ext80.Inf(false); significand = a; return; }
        Unpack(a, out int ea, out ulong ma);
        exponent = FromInt64(ea - Ext80.Bias);
        significand = new Ext80((ushort)((a.Sign ? 0x8000 : 0) | Ext80.Bias), ma);
    }

    /// <summary>FPREM (truncating quotient) and FPREM1 (IEEE, nearest quotient). Returns the low three quotient bits
    /// in q; <paramref name="complete"/> is false when the exponent difference was too large for one step (C2).</summary>
    public static Ext80 Remainder(ref FpEnv e, Ext80 a, Ext80 b, bool ieee, out int q, out bool complete)
    {
        q = 0;
        complete = true;
        if (Special2(ref e, a, b, out var r)) return r;
        if (a.IsInf || b.IsZero) { e.Flags |= IE; return Ext80.Indefinite; }
        if (a.IsZero) return a;
        // x rem inf = x: a denormal x is passed through and raises no UE even unmasked on Intel (model 0xCF); AMD (family
        // 1Ah) raises UE as Round1 does (a vendor quirk in the differential tests). A pseudo-denormal is normalised.
        if (b.IsInf) return a.Exp == 0 && (a.Mant & Ext80.J) == 0 ? a : Round1Exact(ref e, a);
        Unpack(a, out int ea, out ulong ma);
        Unpack(b, out int eb, out ulong mb);
        int d = ea - eb;
        bool sign = a.Sign;
        if (d < 0)
        {
            if (ieee && d == -1 && ma > mb)
            {
                // |a| > |b|/2: the nearest quotient is 1, the remainder a - b has the opposite sign.
                q = 1;
                UInt128 m = ((UInt128)mb << 1) - ma;
                return NormRoundPack(ref e, !sign, ea, m, 64);
            }
            return Round1Exact(ref e, a);
        }
        int shift = d;
        if (d >= 64)
        {
            complete = false;
            shift = 32 + ((d - 32) & 31);
        }
        UInt128 num = (UInt128)ma << shift;
        UInt128 quo = num / mb;
        ulong rem = (ulong)(num % mb);
        if (ieee && complete)
        {
            UInt128 twice = (UInt128)rem << 1;
            if (twice > mb || (twice == mb && (quo & 1) != 0))
            {
                rem = mb - rem;
                quo++;
                sign = !sign;
            }
        }
        q = (int)(quo & 7);
        if (rem == 0) return Ext80.Zero(sign);
        // remainder value = rem * 2^(ea - shift - 16383 - 63)
        return NormRoundPack(ref e, sign, ea - shift, rem, 64);
    }

    static Ext80 Round1Exact(ref FpEnv e, Ext80 a)
    {
        if (a.IsZero || a.IsInf) return a;
        return Round1(ref e, a, 64);
    }

    // ---------------- BCD ----------------

    /// <summary>FBLD: 18 packed BCD digits and a sign byte. Invalid digits give an undefined result (SDM FBLD); they are
    /// converted as if each nibble were a digit.</summary>
    public static Ext80 FromBcd(ulong low8, ushort high2)
    {
        ulong v = 0;
        for (int k = 8; k >= 0; k--)
        {
            uint b = k == 8 ? (uint)(high2 & 0xFF) : (uint)(low8 >> (8 * k)) & 0xFF;
            v = v * 100 + (b >> 4) * 10 + (b & 15);
        }
        bool sign = (high2 & 0x8000) != 0;
        return v == 0 ? Ext80.Zero(sign) : FromMagnitude(sign, v);
    }

    /// <summary>FBSTP: rounds by FCW.RC; |value| &gt;= 10^18, NaN and infinity raise IE and store the BCD indefinite.</summary>
    public static bool ToBcd(ref FpEnv e, Ext80 a, out ulong low8, out ushort high2)
    {
        low8 = 0xC000_0000_0000_0000; high2 = 0xFFFF; // BCD indefinite (SDM Vol. 1 Table 4-6)
        if (a.IsUnsupported || a.IsNaN || a.IsInf) { e.Flags |= IE; return false; }
        ulong mag = 0;
        if (!a.IsZero)
        {
            Unpack(a, out int ea, out ulong ma);
            if (!RoundToInteger(a.Sign, ea, ma, e.Rc, out mag, out bool inexact, out bool up) || mag >= 1_000_000_000_000_000_000UL)
            {
                e.Flags |= IE;
                return false;
            }
            if (inexact) { e.Flags |= PE; e.RoundedUp = up; }
        }
        ulong lo = 0;
        for (int k = 0; k < 8; k++)
        {
            ulong two = mag % 100;
            mag /= 100;
            lo |= ((two / 10) << 4 | (two % 10)) << (8 * k);
        }
        ulong top = mag % 100;
        low8 = lo;
        high2 = (ushort)((a.Sign ? 0x8000 : 0) | (int)((top / 10) << 4 | (top % 10)));
        return true;
    }
}
