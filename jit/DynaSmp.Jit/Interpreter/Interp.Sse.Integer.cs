using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE/SSE2 packed integer arithmetic, compares, logic (integer and FP-typed bitwise forms) and
/// sign-mask extraction.</summary>
public static unsafe partial class Interp
{
    static bool TrySseInteger(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Pxor: case Mnemonic.Por: case Mnemonic.Pand: case Mnemonic.Pandn:
            case Mnemonic.Xorps: case Mnemonic.Xorpd: case Mnemonic.Andps: case Mnemonic.Andpd:
            case Mnemonic.Andnps: case Mnemonic.Andnpd: case Mnemonic.Orps: case Mnemonic.Orpd:
            {
                CpuState* s = c.State;
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, IntegerOp(i.Mnemonic, GetXmm(s, i.Op0Register), b));
                return true;
            }
            case Mnemonic.Pmovmskb: case Mnemonic.Movmskps: case Mnemonic.Movmskpd:
            {
                CpuState* s = c.State;
                SseEnter(s, i);
                Vector128<ulong> v = GetXmm(s, i.Op1Register);
                uint mask = i.Mnemonic switch
                {
                    Mnemonic.Pmovmskb => Vector128.ExtractMostSignificantBits(v.AsByte()),
                    Mnemonic.Movmskps => Vector128.ExtractMostSignificantBits(v.AsUInt32()),
                    _ => Vector128.ExtractMostSignificantBits(v),
                };
                WriteReg(s, i.Op0Register, mask); // zero-extended to the register width
                return true;
            }
            default: return false;
        }
    }

    /// <summary>The packed integer family (<see cref="IsPackedIntegerOp"/>) in one place for tier 0, running the same
    /// core tier 1 calls: the source is xmm/m128, or for PSLLD xmm, imm8 and the byte shifts the count in its low qword.</summary>
    static bool TryPackedInteger(CpuCore c, in Instruction i)
    {
        if (!IsPackedIntegerOp(i.Mnemonic)) return false;
        CpuState* s = c.State;
        SseEnter(s, i);
        Vector128<ulong> b = i.OpCount >= 2 && i.Op1Kind == OpKind.Immediate8 ? Vector128.Create((ulong)i.Immediate8, 0) : ReadXmmM128(c, i, 1);
        int imm = i.GetOpKind(i.OpCount - 1) == OpKind.Immediate8 ? i.Immediate8 : 0;
        SetXmm(s, i.Op0Register, PackedIntegerOp(i.Mnemonic, GetXmm(s, i.Op0Register), b, imm));
        return true;
    }

    /// <summary>dest = dest OP src for the two-operand packed integer/logic instructions (SDM instruction pages).</summary>
    static Vector128<ulong> IntegerOp(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b)
    {
        switch (m)
        {
            case Mnemonic.Pxor: case Mnemonic.Xorps: case Mnemonic.Xorpd: return a ^ b;
            case Mnemonic.Por: case Mnemonic.Orps: case Mnemonic.Orpd: return a | b;
            case Mnemonic.Pand: case Mnemonic.Andps: case Mnemonic.Andpd: return a & b;
            case Mnemonic.Pandn: case Mnemonic.Andnps: case Mnemonic.Andnpd: return ~a & b; // NOT dest AND src
            case Mnemonic.Pcmpeqb: return Vector128.Equals(a.AsByte(), b.AsByte()).AsUInt64();
            case Mnemonic.Pcmpeqw: return Vector128.Equals(a.AsUInt16(), b.AsUInt16()).AsUInt64();
            case Mnemonic.Pcmpeqd: return Vector128.Equals(a.AsUInt32(), b.AsUInt32()).AsUInt64();
            case Mnemonic.Pcmpgtb: return Vector128.GreaterThan(a.AsSByte(), b.AsSByte()).AsUInt64();
            case Mnemonic.Pcmpgtw: return Vector128.GreaterThan(a.AsInt16(), b.AsInt16()).AsUInt64();
            case Mnemonic.Pcmpgtd: return Vector128.GreaterThan(a.AsInt32(), b.AsInt32()).AsUInt64();
            case Mnemonic.Paddb: return (a.AsByte() + b.AsByte()).AsUInt64();
            case Mnemonic.Paddw: return (a.AsUInt16() + b.AsUInt16()).AsUInt64();
            case Mnemonic.Paddd: return (a.AsUInt32() + b.AsUInt32()).AsUInt64();
            case Mnemonic.Paddq: return a + b;
            case Mnemonic.Psubb: return (a.AsByte() - b.AsByte()).AsUInt64();
            case Mnemonic.Psubw: return (a.AsUInt16() - b.AsUInt16()).AsUInt64();
            case Mnemonic.Psubd: return (a.AsUInt32() - b.AsUInt32()).AsUInt64();
            case Mnemonic.Psubq: return a - b;
            case Mnemonic.Pminub: return Vector128.Min(a.AsByte(), b.AsByte()).AsUInt64();
            case Mnemonic.Pmaxub: return Vector128.Max(a.AsByte(), b.AsByte()).AsUInt64();
            case Mnemonic.Pminsw: return Vector128.Min(a.AsInt16(), b.AsInt16()).AsUInt64();
            case Mnemonic.Pmaxsw: return Vector128.Max(a.AsInt16(), b.AsInt16()).AsUInt64();
            case Mnemonic.Pmullw: return (a.AsUInt16() * b.AsUInt16()).AsUInt64(); // low 16 bits of each product
        }
        return IntegerLaneOp(m, a, b);
    }

    /// <summary>The saturating, averaging, high-multiply and horizontal forms, lane by lane.</summary>
    static Vector128<ulong> IntegerLaneOp(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b)
    {
        Vector128<ulong> r = default;
        byte* ab = (byte*)&a, bb = (byte*)&b, rb = (byte*)&r;
        short* aw = (short*)ab, bw = (short*)bb, rw = (short*)rb;
        switch (m)
        {
            case Mnemonic.Paddsb: for (int k = 0; k < 16; k++) rb[k] = (byte)SatS8((sbyte)ab[k] + (sbyte)bb[k]); break;
            case Mnemonic.Psubsb: for (int k = 0; k < 16; k++) rb[k] = (byte)SatS8((sbyte)ab[k] - (sbyte)bb[k]); break;
            case Mnemonic.Paddusb: for (int k = 0; k < 16; k++) rb[k] = SatU8(ab[k] + bb[k]); break;
            case Mnemonic.Psubusb: for (int k = 0; k < 16; k++) rb[k] = SatU8(ab[k] - bb[k]); break;
            case Mnemonic.Paddsw: for (int k = 0; k < 8; k++) rw[k] = SatS16(aw[k] + bw[k]); break;
            case Mnemonic.Psubsw: for (int k = 0; k < 8; k++) rw[k] = SatS16(aw[k] - bw[k]); break;
            case Mnemonic.Paddusw: for (int k = 0; k < 8; k++) rw[k] = (short)SatU16((ushort)aw[k] + (ushort)bw[k]); break;
            case Mnemonic.Psubusw: for (int k = 0; k < 8; k++) rw[k] = (short)SatU16((ushort)aw[k] - (ushort)bw[k]); break;
            // PAVGB/PAVGW: (a + b + 1) >> 1 computed without overflow of the element.
            case Mnemonic.Pavgb: for (int k = 0; k < 16; k++) rb[k] = (byte)((ab[k] + bb[k] + 1) >> 1); break;
            case Mnemonic.Pavgw: for (int k = 0; k < 8; k++) rw[k] = (short)(((ushort)aw[k] + (ushort)bw[k] + 1) >> 1); break;
            case Mnemonic.Pmulhw: for (int k = 0; k < 8; k++) rw[k] = (short)((aw[k] * bw[k]) >> 16); break;
            case Mnemonic.Pmulhuw: for (int k = 0; k < 8; k++) rw[k] = (short)(((ushort)aw[k] * (uint)(ushort)bw[k]) >> 16); break;
            case Mnemonic.Pmuludq:
            {
                uint* ad = (uint*)ab, bd = (uint*)bb;
                ulong* rq = (ulong*)rb;
                rq[0] = (ulong)ad[0] * bd[0];
                rq[1] = (ulong)ad[2] * bd[2];
                break;
            }
            case Mnemonic.Pmaddwd:
            {
                // Only 0x8000*0x8000 twice overflows: it wraps to 0x80000000 (SDM PMADDWD), as int arithmetic does.
                int* rd = (int*)rb;
                for (int k = 0; k < 4; k++)
                    rd[k] = unchecked(aw[2 * k] * bw[2 * k] + aw[2 * k + 1] * bw[2 * k + 1]);
                break;
            }
            case Mnemonic.Psadbw:
            {
                // Each qword: sum of |a-b| over its 8 bytes in the low word, upper 48 bits zero.
                ulong* rq = (ulong*)rb;
                for (int h = 0; h < 2; h++)
                {
                    uint sum = 0;
                    for (int k = 8 * h; k < 8 * h + 8; k++) sum += (uint)Math.Abs(ab[k] - bb[k]);
                    rq[h] = sum;
                }
                break;
            }
        }
        return r;
    }

    static int SatS8(int v) => v < sbyte.MinValue ? sbyte.MinValue : v > sbyte.MaxValue ? sbyte.MaxValue : v;
    static byte SatU8(int v) => v < 0 ? (byte)0 : v > byte.MaxValue ? byte.MaxValue : (byte)v;
    static short SatS16(int v) => v < short.MinValue ? short.MinValue : v > short.MaxValue ? short.MaxValue : (short)v;
    static ushort SatU16(int v) => v < 0 ? (ushort)0 : v > ushort.MaxValue ? ushort.MaxValue : (ushort)v;
}
