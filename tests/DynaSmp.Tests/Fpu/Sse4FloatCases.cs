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
