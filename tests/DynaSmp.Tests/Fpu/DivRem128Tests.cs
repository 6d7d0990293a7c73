using DynaSmp.Jit.Fpu;

namespace DynaSmp.Tests.Fpu;

/// <summary>SoftFloat80's 128-by-64-bit division (FDIV's mantissa quotient) against UInt128's, on random dividends
/// and on the digit-estimate edge cases (divisors with and without the top bit, a high word of d - 1, all-ones words).</summary>
public sealed class DivRem128Tests
{
    [Fact]
    public void Matches_uint128_division_whenever_the_quotient_fits_64_bits()
    {
        var rng = new Random(0x5EED);
        ulong[] special = [1, 2, 3, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0001, 0x8000_0000_0000_0000, 0x8000_0000_0000_0001,
            0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0xC000_0000_0000_0000];
        int checkedCases = 0;
        for (int k = 0; k < 200_000; k++)
        {
            ulong d = k < special.Length * special.Length ? special[k % special.Length] : ((ulong)rng.NextInt64() << rng.Next(0, 2)) | (uint)rng.Next(1, 4);
            if (d == 0) continue;
            ulong hi = k < special.Length * special.Length ? Math.Min(special[k / special.Length], d - 1) : (ulong)rng.NextInt64() % d;
            ulong lo = k % 3 == 0 ? ulong.MaxValue : (ulong)rng.NextInt64() ^ ((ulong)(uint)rng.Next() << 40);
            UInt128 n = ((UInt128)hi << 64) | lo;
            ulong q = SoftFloat80.DivRem128By64(hi, lo, d, out ulong r);
            Assert.True((ulong)(n / d) == q && (ulong)(n % d) == r, $"0x{hi:x}:{lo:x} / 0x{d:x}: got {q:x} rem {r:x}, want {(ulong)(n / d):x} rem {(ulong)(n % d):x}");
            checkedCases++;
        }
        Assert.True(checkedCases > 199_000);
    }
}
