using System.Runtime.CompilerServices;

namespace DynaSmp.Jit.Fpu;

/// <summary>An x87 double extended-precision value as stored in a register or m80: 64-bit significand with an
/// explicit integer bit (J, bit 63), then sign and a 15-bit biased exponent (SDM Vol. 1 4.2.2, 4.8.3).</summary>
public struct Ext80 : IEquatable<Ext80>
{
    public ulong Mant;
    /// <summary>Bit 15 sign, bits 0-14 biased exponent (bias 16383).</summary>
    public ushort Se;

    public const int Bias = 16383, MaxExp = 0x7FFF;
    public const ulong J = 1UL << 63, QuietBit = 1UL << 62;

    public Ext80(ushort se, ulong mant) { Se = se; Mant = mant; }

    public readonly bool Sign => (Se & 0x8000) != 0;
    public readonly int Exp => Se & 0x7FFF;

    public static Ext80 Zero(bool sign) => new((ushort)(sign ? 0x8000 : 0), 0);
    public static Ext80 Inf(bool sign) => new((ushort)(sign ? 0xFFFF : 0x7FFF), J);
    /// <summary>The QNaN floating-point indefinite: the masked response to an invalid operation (SDM Vol. 1 Table 4-3).</summary>
    public static readonly Ext80 Indefinite = new(0xFFFF, 0xC000_0000_0000_0000);

    public readonly bool IsZero => Exp == 0 && Mant == 0;
    /// <summary>Exponent 0 with a non-zero significand: a denormal (J = 0) or pseudo-denormal (J = 1).</summary>
    public readonly bool IsDenormal => Exp == 0 && Mant != 0;
    public readonly bool IsInf => Exp == MaxExp && Mant == J;
    public readonly bool IsNaN => Exp == MaxExp && (Mant & J) != 0 && (Mant << 1) != 0;
    public readonly bool IsSNaN => IsNaN && (Mant & QuietBit) == 0;
    /// <summary>Formats the 387 and later reject as operands (IE): pseudo-NaN, pseudo-infinity and unnormals
    /// (a non-zero exponent with J = 0; SDM Vol. 1 8.2.2).</summary>
    public readonly bool IsUnsupported => Exp != 0 && (Mant & J) == 0;

    public readonly Ext80 Negate() => new((ushort)(Se ^ 0x8000), Mant);
    public readonly Ext80 Abs() => new((ushort)(Se & 0x7FFF), Mant);
    public readonly Ext80 Quiet() => new(Se, Mant | QuietBit);

    public readonly bool Equals(Ext80 o) => Mant == o.Mant && Se == o.Se;
    public override readonly bool Equals(object? obj) => obj is Ext80 o && Equals(o);
    public override readonly int GetHashCode() => HashCode.Combine(Mant, Se);
    public static bool operator ==(Ext80 a, Ext80 b) => a.Equals(b);
    public static bool operator !=(Ext80 a, Ext80 b) => !a.Equals(b);
    public override readonly string ToString() => $"{Se:x4}:{Mant:x16}";

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Ext80 Load(byte* p) => new(*(ushort*)(p + 8), *(ulong*)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly unsafe void Store(byte* p)
    {
        *(ulong*)p = Mant;
        *(ushort*)(p + 8) = Se;
    }
}
