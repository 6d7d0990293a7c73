using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSSE3 (legacy encodings, XMM forms; run by <c>TryPackedInteger</c>, as the packed integer family): PSHUFB, PHADD/PHSUB (W, D, SW), PMADDUBSW, PMULHRSW, PSIGN (B, W, D),
/// PABS (B, W, D) and PALIGNR, lane by lane in portable C# (SDM Vol. 2 instruction pages). The MMX-register forms are
/// #UD like every MMX form here (CPUID reports no MMX).</summary>
public static unsafe partial class Interp
{
    static short SatW(int v) => (short)Math.Clamp(v, short.MinValue, short.MaxValue);

    /// <summary>dest OP src (a = destination, b = source) for the SSSE3 instructions.</summary>
    static Vector128<ulong> Ssse3Op(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b, int imm)
    {
        Vector128<ulong> r = default;
        var ab = MemoryMarshal.AsBytes(new Span<Vector128<ulong>>(ref a));
        var bb = MemoryMarshal.AsBytes(new Span<Vector128<ulong>>(ref b));
        var rb = MemoryMarshal.AsBytes(new Span<Vector128<ulong>>(ref r));
        var aw = MemoryMarshal.Cast<byte, short>(ab); var bw = MemoryMarshal.Cast<byte, short>(bb); var rw = MemoryMarshal.Cast<byte, short>(rb);
        var ad = MemoryMarshal.Cast<byte, int>(ab); var bd = MemoryMarshal.Cast<byte, int>(bb); var rd = MemoryMarshal.Cast<byte, int>(rb);
        switch (m)
        {
            case Mnemonic.Pshufb:
                for (int k = 0; k < 16; k++) rb[k] = (bb[k] & 0x80) != 0 ? (byte)0 : ab[bb[k] & 15];
                break;
            case Mnemonic.Phaddw: case Mnemonic.Phsubw: case Mnemonic.Phaddsw: case Mnemonic.Phsubsw:
                for (int k = 0; k < 8; k++)
                {
                    var src = k < 4 ? aw : bw;
                    int x = src[2 * (k & 3)], y = src[2 * (k & 3) + 1];
                    int v = m is Mnemonic.Phaddw or Mnemonic.Phaddsw ? x + y : x - y;
                    rw[k] = m is Mnemonic.Phaddsw or Mnemonic.Phsubsw ? SatW(v) : (short)v;
                }
                break;
            case Mnemonic.Phaddd: case Mnemonic.Phsubd:
                for (int k = 0; k < 4; k++)
                {
                    var src = k < 2 ? ad : bd;
                    int x = src[2 * (k & 1)], y = src[2 * (k & 1) + 1];
                    rd[k] = m == Mnemonic.Phaddd ? x + y : x - y;
                }
                break;
            case Mnemonic.Pmaddubsw:
                // Unsigned bytes of the destination times signed bytes of the source, pairs summed with signed saturation.
                for (int k = 0; k < 8; k++)
                    rw[k] = SatW(ab[2 * k] * (sbyte)bb[2 * k] + ab[2 * k + 1] * (sbyte)bb[2 * k + 1]);
                break;
            case Mnemonic.Pmulhrsw:
                for (int k = 0; k < 8; k++) rw[k] = (short)((((aw[k] * bw[k]) >> 14) + 1) >> 1);
                break;
            case Mnemonic.Psignb:
                for (int k = 0; k < 16; k++) rb[k] = (sbyte)bb[k] < 0 ? (byte)-ab[k] : bb[k] == 0 ? (byte)0 : ab[k];
                break;
            case Mnemonic.Psignw:
                for (int k = 0; k < 8; k++) rw[k] = bw[k] < 0 ? (short)-aw[k] : bw[k] == 0 ? (short)0 : aw[k];
                break;
            case Mnemonic.Psignd:
                for (int k = 0; k < 4; k++) rd[k] = bd[k] < 0 ? -ad[k] : bd[k] == 0 ? 0 : ad[k];
                break;
            case Mnemonic.Pabsb:
                for (int k = 0; k < 16; k++) rb[k] = (byte)Math.Abs((int)(sbyte)bb[k]);
                break;
            case Mnemonic.Pabsw:
                for (int k = 0; k < 8; k++) rw[k] = (short)Math.Abs((int)bw[k]);
                break;
            case Mnemonic.Pabsd:
                for (int k = 0; k < 4; k++) rd[k] = (int)(uint)Math.Abs((long)bd[k]);
                break;
            default: // PALIGNR: the 32-byte dest:src shifted right by imm8 bytes, low 16 kept
                for (int k = 0; k < 16; k++)
                {
                    int idx = k + imm;
                    rb[k] = idx < 16 ? bb[idx] : idx < 32 ? ab[idx - 16] : (byte)0;
                }
                break;
        }
        return r;
    }
}
