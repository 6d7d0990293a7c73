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
            case Mnemonic.Shufps: case Mnemonic.Shufpd:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                Vector128<ulong> a = GetXmm(s, i.Op0Register);
                SetXmm(s, i.Op0Register, i.Mnemonic == Mnemonic.Shufps ? Shufps(a, b, i.Immediate8) : Shufpd(a, b, i.Immediate8));
                return true;
            }
            case Mnemonic.Unpcklps: case Mnemonic.Unpckhps: case Mnemonic.Unpcklpd: case Mnemonic.Unpckhpd:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, UnpackPackOp(i.Mnemonic, GetXmm(s, i.Op0Register), b));
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

    /// <summary>PSLLDQ/PSRLDQ: the whole register shifted by imm8 bytes; past 15 every byte is shifted out.</summary>
    static Vector128<ulong> ByteShiftOp(Mnemonic m, Vector128<ulong> v, uint n)
    {
        if (n > 15) return Vector128<ulong>.Zero;
        UInt128 x = new(v.GetElement(1), v.GetElement(0));
        x = m == Mnemonic.Pslldq ? x << (int)(n * 8) : x >> (int)(n * 8);
        return Vector128.Create((ulong)x, (ulong)(x >> 64));
    }

    /// <summary>Which core computes a packed integer instruction (<see cref="PackedIntegerOp"/>); None: not one of them.</summary>
    enum PackedFamily : byte { None, Arithmetic, Shuffle, UnpackPack, Shift, ByteShift, Ssse3 }

    static PackedFamily FamilyOf(Mnemonic m) => m switch
    {
        Mnemonic.Pcmpeqb or Mnemonic.Pcmpeqw or Mnemonic.Pcmpeqd or Mnemonic.Pcmpgtb or Mnemonic.Pcmpgtw or Mnemonic.Pcmpgtd
            or Mnemonic.Paddb or Mnemonic.Paddw or Mnemonic.Paddd or Mnemonic.Paddq or Mnemonic.Psubb or Mnemonic.Psubw
            or Mnemonic.Psubd or Mnemonic.Psubq or Mnemonic.Paddsb or Mnemonic.Paddsw or Mnemonic.Paddusb or Mnemonic.Paddusw
            or Mnemonic.Psubsb or Mnemonic.Psubsw or Mnemonic.Psubusb or Mnemonic.Psubusw or Mnemonic.Pminub or Mnemonic.Pmaxub
            or Mnemonic.Pminsw or Mnemonic.Pmaxsw or Mnemonic.Pavgb or Mnemonic.Pavgw or Mnemonic.Pmullw or Mnemonic.Pmulhw
            or Mnemonic.Pmulhuw or Mnemonic.Pmuludq or Mnemonic.Pmaddwd or Mnemonic.Psadbw => PackedFamily.Arithmetic,
        Mnemonic.Pshufd or Mnemonic.Pshuflw or Mnemonic.Pshufhw => PackedFamily.Shuffle,
        Mnemonic.Punpcklbw or Mnemonic.Punpcklwd or Mnemonic.Punpckldq or Mnemonic.Punpcklqdq or Mnemonic.Punpckhbw
            or Mnemonic.Punpckhwd or Mnemonic.Punpckhdq or Mnemonic.Punpckhqdq or Mnemonic.Packsswb or Mnemonic.Packssdw
            or Mnemonic.Packuswb => PackedFamily.UnpackPack,
        Mnemonic.Psllw or Mnemonic.Pslld or Mnemonic.Psllq or Mnemonic.Psrlw or Mnemonic.Psrld or Mnemonic.Psrlq
            or Mnemonic.Psraw or Mnemonic.Psrad => PackedFamily.Shift,
        Mnemonic.Pslldq or Mnemonic.Psrldq => PackedFamily.ByteShift,
        Mnemonic.Pshufb or Mnemonic.Phaddw or Mnemonic.Phaddd or Mnemonic.Phaddsw or Mnemonic.Phsubw or Mnemonic.Phsubd
            or Mnemonic.Phsubsw or Mnemonic.Pmaddubsw or Mnemonic.Pmulhrsw or Mnemonic.Psignb or Mnemonic.Psignw
            or Mnemonic.Psignd or Mnemonic.Pabsb or Mnemonic.Pabsw or Mnemonic.Pabsd or Mnemonic.Palignr => PackedFamily.Ssse3,
        _ => PackedFamily.None,
    };

    // FamilyOf per mnemonic, looked up by tier 1's helper on every packed integer instruction it runs.
    static readonly PackedFamily[] PackedFamilies = BuildPackedFamilies();

    static PackedFamily[] BuildPackedFamilies()
    {
        var t = new PackedFamily[MnemonicClass.Count];
        foreach (var m in Enum.GetValues<Mnemonic>()) t[(int)m] = FamilyOf(m);
        return t;
    }

    /// <summary>The packed integer instructions tier 1 lowers (<c>InstEmit.SseInteger</c>): every XMM form whose
    /// result is a function of the destination, the source (or shift count) and imm8, and which raises nothing once the
    /// CR0/CR4 and alignment checks passed.</summary>
    internal static bool IsPackedIntegerOp(Mnemonic m) => PackedFamilies[(int)m] != PackedFamily.None;

    /// <summary>The result of a packed integer instruction (<see cref="IsPackedIntegerOp"/>) from the destination
    /// <paramref name="a"/>, the source <paramref name="b"/> (for the shifts by xmm or imm8: the count in its low qword)
    /// and imm8: the same cores tier 0 runs, so both tiers share one definition.</summary>
    internal static Vector128<ulong> PackedIntegerOp(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b, int imm) => PackedFamilies[(int)m] switch
    {
        PackedFamily.Shuffle => PshufOp(m, b, (byte)imm),
        PackedFamily.UnpackPack => UnpackPackOp(m, a, b),
        PackedFamily.Shift => ShiftOp(m, a, b.GetElement(0)),
        PackedFamily.ByteShift => ByteShiftOp(m, a, (uint)imm),
        PackedFamily.Ssse3 => Ssse3Op(m, a, b, imm),
        _ => IntegerOp(m, a, b),
    };

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
