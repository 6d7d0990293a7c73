using DynaSmp.Tests.Differential;
using Iced.Intel;

namespace DynaSmp.Tests.Fpu;

/// <summary>SSE3 and SSE4.1 floating point (ADDSUB, HADD, HSUB, ROUNDxx, DPPS/DPPD): the SSE2 generator's operands
/// (special values, random RC/FTZ/DAZ, every exception masked), and for ROUNDxx lanes at rounding boundaries
/// (integers, halves and quarters, one ulp either side, magnitudes near 2^(p-1) where the fraction runs out).</summary>
public static class Sse4FloatCases
{
    public static readonly Mnemonic[] Mnemonics =
    [
        Mnemonic.Addsubps, Mnemonic.Addsubpd, Mnemonic.Haddps, Mnemonic.Haddpd, Mnemonic.Hsubps, Mnemonic.Hsubpd,
        Mnemonic.Roundps, Mnemonic.Roundpd, Mnemonic.Roundss, Mnemonic.Roundsd, Mnemonic.Dpps, Mnemonic.Dppd,
    ];

    public static FpCase Generate(string group, Code[] codes, ulong seed)
    {
        var c = SseFloatCases.Generate(group, codes, seed);
        var m = c.Insn.Mnemonic;
        if (m is Mnemonic.Dpps or Mnemonic.Dppd)
            c.Tolerance = (n, d) => DotProductNaNs(n, d, c, m == Mnemonic.Dppd);
        if (m is not (Mnemonic.Roundps or Mnemonic.Roundpd or Mnemonic.Roundss or Mnemonic.Roundsd)) return c;
        var r = new Rng(seed ^ 0x0B0D_A7E5);
        bool dbl = m is Mnemonic.Roundpd or Mnemonic.Roundsd;
        int step = dbl ? 8 : 4;
        for (int x = 0; x < 16; x++)
            for (int k = 0; k < 16; k += step)
                if (r.Percent(50)) Write(c.Image.AsSpan(160 + 16 * x + k), Boundary(r, dbl), dbl);
        if (c.Insn.HasOpKind(OpKind.Memory))
        {
            int off = FpuDiff.MemOffset + (int)c.Insn.MemoryDisplacement64;
            for (int k = 0; k < 16; k += step)
                if (r.Percent(70)) Write(c.Buffer.AsSpan(off + k), Boundary(r, dbl), dbl);
        }
        return c;
    }

    /// <summary>DPPS/DPPD: which NaN reaches the destination is implementation dependent (SDM DPPS/DPPD: "horizontal
    /// propagation of NaNs ... is implementation dependent"; at least one NaN is propagated). A destination lane where
    /// both results are NaNs of any payload agrees; every other output bit, MXCSR included, must be equal.</summary>
    static string? DotProductNaNs(byte[] native, byte[] emu, FpCase c, bool dbl)
    {
        int dest = 160 + 16 * (c.Insn.Op0Register - Register.XMM0);
        for (int k = 0; k < c.ImageMask.Length; k++)
            if ((k < dest || k >= dest + 16) && ((native[k] ^ emu[k]) & c.ImageMask[k]) != 0) return $"state byte {k} differs";
        int step = dbl ? 8 : 4;
        for (int k = dest; k < dest + 16; k += step)
        {
            bool nn = dbl ? double.IsNaN(BitConverter.ToDouble(native, k)) : float.IsNaN(BitConverter.ToSingle(native, k));
            bool en = dbl ? double.IsNaN(BitConverter.ToDouble(emu, k)) : float.IsNaN(BitConverter.ToSingle(emu, k));
            bool same = native.AsSpan(k, step).SequenceEqual(emu.AsSpan(k, step));
            if (!same && !(nn && en)) return $"destination lane at byte {k - dest} differs (not two NaNs)";
        }
        return null;
    }

    static void Write(Span<byte> dst, ulong v, bool dbl)
    {
        if (dbl) BitConverter.TryWriteBytes(dst, v);
        else BitConverter.TryWriteBytes(dst, (uint)v);
    }

    static ulong Boundary(Rng r, bool dbl)
    {
        int p = dbl ? 53 : 24;
        double whole = r.Percent(70) ? r.Next(0, 12) : Math.ScaleB(1, p - 1 - r.Next(0, 3)) + r.Next(-3, 4);
        double v = whole + r.Pick(new[] { 0, 0.5, 0.25, 0.75 });
        if (r.Percent(50)) v = -v;
        if (dbl)
        {
            ulong bits = BitConverter.DoubleToUInt64Bits(v);
            return v == 0 || !r.Percent(30) ? bits : bits + (ulong)r.Next(-1, 2);
        }
        uint f = BitConverter.SingleToUInt32Bits((float)v);
        return v == 0 || !r.Percent(30) ? f : (uint)(f + r.Next(-1, 2));
    }
}
