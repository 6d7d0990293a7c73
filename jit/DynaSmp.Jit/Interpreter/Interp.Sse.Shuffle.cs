using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE/SSE2 shuffles, unpacks, packs, shifts and word insert/extract.</summary>
public static unsafe partial class Interp
{
    static bool TrySseShuffle(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Pshufd: case Mnemonic.Pshuflw: case Mnemonic.Pshufhw:
            {
                SseEnter(s, i);
                Vector128<ulong> v = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, PshufOp(i.Mnemonic, v, i.Immediate8));
                return true;
            }
            case Mnemonic.Shufps: case Mnemonic.Shufpd:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                Vector128<ulong> a = GetXmm(s, i.Op0Register);
                SetXmm(s, i.Op0Register, i.Mnemonic == Mnemonic.Shufps ? Shufps(a, b, i.Immediate8) : Shufpd(a, b, i.Immediate8));
                return true;
            }
            case Mnemonic.Punpcklbw: case Mnemonic.Punpcklwd: case Mnemonic.Punpckldq: case Mnemonic.Punpcklqdq:
            case Mnemonic.Punpckhbw: case Mnemonic.Punpckhwd: case Mnemonic.Punpckhdq: case Mnemonic.Punpckhqdq:
            case Mnemonic.Unpcklps: case Mnemonic.Unpckhps: case Mnemonic.Unpcklpd: case Mnemonic.Unpckhpd:
            case Mnemonic.Packsswb: case Mnemonic.Packssdw: case Mnemonic.Packuswb:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, UnpackPackOp(i.Mnemonic, GetXmm(s, i.Op0Register), b));
                return true;
            }
            case Mnemonic.Psllw: case Mnemonic.Pslld: case Mnemonic.Psllq:
            case Mnemonic.Psrlw: case Mnemonic.Psrld: case Mnemonic.Psrlq:
            case Mnemonic.Psraw: case Mnemonic.Psrad:
            {
                SseEnter(s, i);
                // The count is imm8 or the whole low qword of xmm/m128 (SDM PSLLW/PSRLW/PSRAW: not masked).
                ulong count = i.Op1Kind == OpKind.Immediate8 ? i.Immediate8 : ReadXmmM128(c, i, 1).GetElement(0);
                SetXmm(s, i.Op0Register, ShiftOp(i.Mnemonic, GetXmm(s, i.Op0Register), count));
                return true;
            }
            case Mnemonic.Pslldq: case Mnemonic.Psrldq:
            {
                SseEnter(s, i);
                Vector128<ulong> v = GetXmm(s, i.Op0Register);
                uint n = i.Immediate8;
                if (n > 15) { SetXmm(s, i.Op0Register, Vector128<ulong>.Zero); return true; } // whole register shifted out
                UInt128 x = new(v.GetElement(1), v.GetElement(0));
                x = i.Mnemonic == Mnemonic.Pslldq ? x << (int)(n * 8) : x >> (int)(n * 8);
                SetXmm(s, i.Op0Register, Vector128.Create((ulong)x, (ulong)(x >> 64)));
                return true;
            }
            case Mnemonic.Pinsrw:
            {
                SseEnter(s, i);
                ulong w = i.Op1Kind == OpKind.Register ? ReadReg(s, i.Op1Register) : Mem.Read16(c, MemAddress(s, i));
                int sel = i.Immediate8 & 7;
                int slot = XmmSlot(i.Op0Register) + (sel >> 2);
                int sh = (sel & 3) * 16;
                s->Xmm[slot] = (s->Xmm[slot] & ~(0xFFFFUL << sh)) | ((w & 0xFFFF) << sh);
                return true;
            }
            case Mnemonic.Pextrw:
            {
                // Only the SSE2 register form: the SSE4.1 r/m16 form is not in our CPUID model.
                if (i.Code is not (Code.Pextrw_r32_xmm_imm8 or Code.Pextrw_r64_xmm_imm8)) return false;
                SseEnter(s, i);
                int sel = i.Immediate8 & 7;
                ulong q = s->Xmm[XmmSlot(i.Op1Register) + (sel >> 2)];
                WriteReg(s, i.Op0Register, (q >> ((sel & 3) * 16)) & 0xFFFF); // zero-extended into r32/r64
                return true;
            }
            default: return false;
        }
    }

    /// <summary>PSHUFD: dword k = src dword imm[2k+1:2k]. PSHUFLW/PSHUFHW do the same for the low/high four
    /// words and copy the other qword from the source.</summary>
    static Vector128<ulong> PshufOp(Mnemonic m, Vector128<ulong> v, byte imm)
    {
        Vector128<ulong> r = v;
        if (m == Mnemonic.Pshufd)
        {
            uint* src = (uint*)&v, dst = (uint*)&r;
            for (int k = 0; k < 4; k++) dst[k] = src[(imm >> (2 * k)) & 3];
            return r;
        }
        int b = m == Mnemonic.Pshuflw ? 0 : 4;
        ushort* sw = (ushort*)&v, rw = (ushort*)&r;
        for (int k = 0; k < 4; k++) rw[b + k] = sw[b + ((imm >> (2 * k)) & 3)];
        return r;
    }

    /// <summary>SHUFPS: dest dwords 0,1 come from dest, 2,3 from src, each picked by two imm8 bits.</summary>
    static Vector128<ulong> Shufps(Vector128<ulong> a, Vector128<ulong> b, byte imm)
    {
        Vector128<ulong> r = default;
        uint* ad = (uint*)&a, bd = (uint*)&b, rd = (uint*)&r;
        rd[0] = ad[imm & 3];
        rd[1] = ad[(imm >> 2) & 3];
        rd[2] = bd[(imm >> 4) & 3];
        rd[3] = bd[(imm >> 6) & 3];
        return r;
    }

    /// <summary>SHUFPD: dest qword 0 = dest[imm0], qword 1 = src[imm1].</summary>
    static Vector128<ulong> Shufpd(Vector128<ulong> a, Vector128<ulong> b, byte imm) =>
        Vector128.Create(a.GetElement(imm & 1), b.GetElement((imm >> 1) & 1));

    static Vector128<ulong> UnpackPackOp(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b)
    {
        switch (m)
        {
            case Mnemonic.Punpcklbw: return Unpack(a, b, 1, false);
            case Mnemonic.Punpcklwd: return Unpack(a, b, 2, false);
            case Mnemonic.Punpckldq: case Mnemonic.Unpcklps: return Unpack(a, b, 4, false);
            case Mnemonic.Punpcklqdq: case Mnemonic.Unpcklpd: return Unpack(a, b, 8, false);
            case Mnemonic.Punpckhbw: return Unpack(a, b, 1, true);
            case Mnemonic.Punpckhwd: return Unpack(a, b, 2, true);
            case Mnemonic.Punpckhdq: case Mnemonic.Unpckhps: return Unpack(a, b, 4, true);
            case Mnemonic.Punpckhqdq: case Mnemonic.Unpckhpd: return Unpack(a, b, 8, true);
        }
        // Packs: the dest's elements fill the low half, the source's the high half, each saturated.
        Vector128<ulong> r = default;
        if (m == Mnemonic.Packssdw)
        {
            int* ad = (int*)&a, bd = (int*)&b;
            short* rw = (short*)&r;
            for (int k = 0; k < 4; k++) { rw[k] = SatS16Of32(ad[k]); rw[k + 4] = SatS16Of32(bd[k]); }
            return r;
        }
        short* aw = (short*)&a, bw = (short*)&b;
        byte* rb = (byte*)&r;
        bool signed = m == Mnemonic.Packsswb;
        for (int k = 0; k < 8; k++)
        {
            rb[k] = signed ? (byte)SatS8(aw[k]) : SatU8(aw[k]);
            rb[k + 8] = signed ? (byte)SatS8(bw[k]) : SatU8(bw[k]);
        }
        return r;
    }

    static short SatS16Of32(int v) => v < short.MinValue ? short.MinValue : v > short.MaxValue ? short.MaxValue : (short)v;

    /// <summary>PUNPCKL*/PUNPCKH*: interleave the low (or high) half's elements of dest and src, dest first.</summary>
    static Vector128<ulong> Unpack(Vector128<ulong> a, Vector128<ulong> b, int e, bool high)
    {
        Vector128<ulong> r = default;
        byte* ab = (byte*)&a, bb = (byte*)&b, rb = (byte*)&r;
        int off = high ? 8 : 0;
        for (int k = 0; k < 8 / e; k++)
            for (int j = 0; j < e; j++)
            {
                rb[2 * k * e + j] = ab[off + k * e + j];
                rb[(2 * k + 1) * e + j] = bb[off + k * e + j];
            }
        return r;
    }

    /// <summary>Packed shifts: a logical count beyond the element width clears the element; an arithmetic one
    /// fills it with the sign (SDM PSLLW/PSRLW/PSRAW pages).</summary>
    static Vector128<ulong> ShiftOp(Mnemonic m, Vector128<ulong> v, ulong count)
    {
        switch (m)
        {
            case Mnemonic.Psllw: return count > 15 ? default : Vector128.ShiftLeft(v.AsUInt16(), (int)count).AsUInt64();
            case Mnemonic.Pslld: return count > 31 ? default : Vector128.ShiftLeft(v.AsUInt32(), (int)count).AsUInt64();
            case Mnemonic.Psllq: return count > 63 ? default : Vector128.ShiftLeft(v, (int)count);
            case Mnemonic.Psrlw: return count > 15 ? default : Vector128.ShiftRightLogical(v.AsUInt16(), (int)count).AsUInt64();
            case Mnemonic.Psrld: return count > 31 ? default : Vector128.ShiftRightLogical(v.AsUInt32(), (int)count).AsUInt64();
            case Mnemonic.Psrlq: return count > 63 ? default : Vector128.ShiftRightLogical(v, (int)count);
            case Mnemonic.Psraw: return Vector128.ShiftRightArithmetic(v.AsInt16(), (int)Math.Min(count, 15)).AsUInt64();
            default: return Vector128.ShiftRightArithmetic(v.AsInt32(), (int)Math.Min(count, 31)).AsUInt64();
        }
    }
}
