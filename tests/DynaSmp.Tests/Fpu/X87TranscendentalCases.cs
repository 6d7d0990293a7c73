using DynaSmp.Tests.Differential;
using Iced.Intel;

namespace DynaSmp.Tests.Fpu;

/// <summary>
/// Cases for FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1 with arguments mostly inside each instruction's
/// defined domain. Hardware results are not correctly rounded, so a result register that differs from the host passes
/// when it is within the SDM's bound (Vol. 1 8.3.10: one ulp) of it, plus one ulp for DynaSmp's own rounding, plus,
/// for the trigonometric instructions, the error of Intel's 66-bit pi in the argument reduction (|x| * 2^-66).
/// Everything else (stack, tags, exception flags, C2) is compared exactly; C0, C1 and C3 are not (undefined, or the
/// rounding direction of a result that may legitimately differ in its last bit).
/// </summary>
public static class X87TranscendentalCases
{
    public static readonly Mnemonic[] Mnemonics =
    [
        Mnemonic.Fsin, Mnemonic.Fcos, Mnemonic.Fsincos, Mnemonic.Fptan, Mnemonic.Fpatan, Mnemonic.F2xm1, Mnemonic.Fyl2x, Mnemonic.Fyl2xp1,
    ];

    static void SetSt(FpCase c, int st, (ushort Se, ulong Mant) v)
    {
        BitConverter.TryWriteBytes(c.Image.AsSpan(32 + 16 * st), v.Mant);
        BitConverter.TryWriteBytes(c.Image.AsSpan(40 + 16 * st), v.Se);
        int top = (BitConverter.ToUInt16(c.Image, 2) >> 11) & 7;
        c.Image[4] |= (byte)(1 << ((top + st) & 7));
    }

    static (ushort, ulong) Value(Rng r, int expLo, int expHi, bool allowNegative = true)
    {
        ushort sign = (ushort)(allowNegative && r.Percent(50) ? 0x8000 : 0);
        return ((ushort)(sign | (16383 + r.Next(expLo, expHi + 1))), r.NextU64() | 1UL << 63);
    }

    public static void Adjust(Rng r, FpCase c)
    {
        var m = c.Insn.Mnemonic;
        if (r.Percent(85))
        {
            // In-domain arguments; the remaining cases keep the generic special values (NaNs, infinities, empty, ...).
            switch (m)
            {
                case Mnemonic.Fsin: case Mnemonic.Fcos: case Mnemonic.Fsincos: case Mnemonic.Fptan:
                    SetSt(c, 0, r.Percent(80) ? Value(r, -20, 8) : Value(r, 9, 64));
                    break;
                case Mnemonic.F2xm1: SetSt(c, 0, Value(r, -70, -1)); break;
                case Mnemonic.Fyl2x: SetSt(c, 0, Value(r, -200, 200, allowNegative: false)); SetSt(c, 1, Value(r, -30, 30)); break;
                case Mnemonic.Fyl2xp1: SetSt(c, 0, Value(r, -70, -3)); SetSt(c, 1, Value(r, -30, 30)); break;
                case Mnemonic.Fpatan: SetSt(c, 0, Value(r, -40, 40)); SetSt(c, 1, Value(r, -40, 40)); break;
            }
        }
        else if (m is Mnemonic.F2xm1 or Mnemonic.Fyl2xp1)
        {
            // Outside [-1, 1] (F2XM1) or |x| >= 1 - sqrt(2)/2 (FYL2XP1) the result is undefined: keep only special operands.
            ushort se = BitConverter.ToUInt16(c.Image, 40);
            int exp = se & 0x7FFF;
            if (exp != 0 && exp != 0x7FFF && exp >= 16383 - (m == Mnemonic.Fyl2xp1 ? 2 : 0)) SetSt(c, 0, Value(r, -60, -3));
        }
        var input = c.Image;
        c.ImageMask[3] &= unchecked((byte)~(0x01 | 0x02 | 0x40)); // C0, C1, C3
        c.Tolerance = (native, emu) => WithinBound(m, input, native, emu);
    }

    static (bool Ok, int Exp, ulong Mant, bool Sign) Decode(byte[] im, int slot)
    {
        ulong mant = BitConverter.ToUInt64(im, 32 + 16 * slot);
        ushort se = BitConverter.ToUInt16(im, 40 + 16 * slot);
        int exp = se & 0x7FFF;
        if (exp == 0) return (true, 1, mant, (se & 0x8000) != 0); // denormals (and zero) share exponent 1's ulp
        return (exp != 0x7FFF && (mant >> 63) != 0, exp, mant, (se & 0x8000) != 0);
    }

    static double Value((bool Ok, int Exp, ulong Mant, bool Sign) v) => (v.Sign ? -1 : 1) * Math.ScaleB((double)v.Mant, v.Exp - 16383 - 63);

    /// <summary>Null when every difference is a result register within the bound; otherwise why not.</summary>
    static string? WithinBound(Mnemonic m, byte[] input, byte[] native, byte[] emu)
    {
        // Everything outside the register slots must agree exactly (apart from the masked condition codes).
        for (int k = 0; k < 32; k++)
        {
            int mask = k == 3 ? 0xFF & ~(0x01 | 0x02 | 0x40) : (k is >= 6 and < 24 or >= 28) ? 0 : 0xFF;
            if (((native[k] ^ emu[k]) & mask) != 0) return $"state byte {k} differs beyond the result registers";
        }
        var x = Decode(input, 0);
        bool trig = m is Mnemonic.Fsin or Mnemonic.Fcos or Mnemonic.Fsincos or Mnemonic.Fptan;
        for (int slot = 0; slot < 8; slot++)
        {
            bool same = true;
            for (int k = 0; k < 10; k++) same &= native[32 + 16 * slot + k] == emu[32 + 16 * slot + k];
            if (same) continue;
            var a = Decode(native, slot);
            var b = Decode(emu, slot);
            if (!a.Ok || !b.Ok) return $"ST({slot}) differs in kind";
            // Difference in units of the last place of the larger exponent.
            int e = Math.Max(a.Exp, b.Exp);
            if (trig && x.Ok && (a.Sign != b.Sign || e - Math.Min(a.Exp, b.Exp) > 1))
            {
                // Near a multiple of pi/2 the 66-bit pi's absolute error (|x| * 2^-66) can exceed the result itself:
                // the documented bound is then absolute, and the exponents (even the signs) may differ.
                double abs = Math.Abs(Value(a) - Value(b)), bound = Math.ScaleB(1.0, x.Exp - 16383 - 66 + 1) + Math.ScaleB(1.0, e - 16383 - 62);
                if (abs > bound) return $"ST({slot}) differs by {abs:G3} (allowed {bound:G3} near a multiple of pi/2)";
                continue;
            }
            if (a.Sign != b.Sign) return $"ST({slot}) differs in sign";
            if (e - Math.Min(a.Exp, b.Exp) > 1) return $"ST({slot}) exponents differ by more than one";
            UInt128 va = (UInt128)a.Mant << (64 - (e - a.Exp)), vb = (UInt128)b.Mant << (64 - (e - b.Exp));
            UInt128 diff = va > vb ? va - vb : vb - va;
            double ulps = (double)diff / Math.Pow(2, 64);
            double allowed = 2;
            if (trig && x.Ok)
            {
                // |x| * 2^-66 in ulps of the result (2^(e-63)); the tangent amplifies an argument error by 1 + tan^2.
                double gain = m == Mnemonic.Fptan && slot == 1 ? 1 + Math.Pow(2, 2.0 * (e - 16383) + 2) : 1;
                allowed += Math.Pow(2, (x.Exp - e) - 3) * gain;
            }
            if (ulps > allowed) return $"ST({slot}) differs by {ulps:F1} ulp (allowed {allowed:F1})";
        }
        return null;
    }
}
