using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE4.1 (legacy encodings, SDM Vol. 2 instruction pages): packed min/max, multiplies, PCMPEQQ, PACKUSDW,
/// PMOVSX/PMOVZX, the blends, element inserts and extracts, PTEST, ROUNDxx, DPPS/DPPD, MPSADBW, PHMINPOSUW and
/// MOVNTDQA. The floating-point ones (ROUND, DP) use <see cref="SoftFloat80"/> under MXCSR like the SSE2 arithmetic.</summary>
public static unsafe partial class Interp
{
    static bool TrySse41(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Pminsb: case Mnemonic.Pminsd: case Mnemonic.Pminuw: case Mnemonic.Pminud:
            case Mnemonic.Pmaxsb: case Mnemonic.Pmaxsd: case Mnemonic.Pmaxuw: case Mnemonic.Pmaxud:
            case Mnemonic.Pmulld: case Mnemonic.Pmuldq: case Mnemonic.Pcmpeqq: case Mnemonic.Packusdw:
            case Mnemonic.Phminposuw: case Mnemonic.Movntdqa:
            case Mnemonic.Pblendw: case Mnemonic.Blendps: case Mnemonic.Blendpd:
            case Mnemonic.Pblendvb: case Mnemonic.Blendvps: case Mnemonic.Blendvpd: case Mnemonic.Mpsadbw:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, Sse41Op(i.Mnemonic, GetXmm(s, i.Op0Register), b, GetXmm(s, Register.XMM0),
                    i.OpCount > 2 ? i.Immediate8 : 0));
                return true;
            }
            case Mnemonic.Ptest:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1), a = GetXmm(s, i.Op0Register);
                ulong f = ((a & b) == Vector128<ulong>.Zero ? RFlags.ZF : 0) | ((~a & b) == Vector128<ulong>.Zero ? RFlags.CF : 0);
                Flags.SetStatus(s, RFlags.Status, f); // AF, OF, PF, SF cleared (SDM PTEST)
                return true;
            }
            case Mnemonic.Pmovsxbw: case Mnemonic.Pmovsxbd: case Mnemonic.Pmovsxbq: case Mnemonic.Pmovsxwd:
            case Mnemonic.Pmovsxwq: case Mnemonic.Pmovsxdq: case Mnemonic.Pmovzxbw: case Mnemonic.Pmovzxbd:
            case Mnemonic.Pmovzxbq: case Mnemonic.Pmovzxwd: case Mnemonic.Pmovzxwq: case Mnemonic.Pmovzxdq:
                PackedMoveExtend(c, i);
                return true;
            case Mnemonic.Pextrb: case Mnemonic.Pextrd: case Mnemonic.Pextrq: case Mnemonic.Extractps: case Mnemonic.Pextrw:
            {
                SseEnter(s, i);
                int size = i.Mnemonic switch { Mnemonic.Pextrb => 1, Mnemonic.Pextrw => 2, Mnemonic.Pextrq => 8, _ => 4 };
                int sel = i.Immediate8 & (16 / size - 1);
                var v = GetXmm(s, i.Op1Register);
                ulong e = Element(v, size, sel);
                // A register destination gets the element zero-extended to the register width.
                if (i.Op0Kind == OpKind.Register) WriteReg(s, i.Op0Register, e);
                else Mem.Write(c, MemAddress(s, i, size, write: true), size, e);
                return true;
            }
            case Mnemonic.Pinsrb: case Mnemonic.Pinsrd: case Mnemonic.Pinsrq:
            {
                SseEnter(s, i);
                int size = i.Mnemonic switch { Mnemonic.Pinsrb => 1, Mnemonic.Pinsrq => 8, _ => 4 };
                ulong e = i.Op1Kind == OpKind.Register ? ReadReg(s, i.Op1Register) : Mem.Read(c, MemAddress(s, i, size, write: false), size);
                int sel = i.Immediate8 & (16 / size - 1);
                SetXmm(s, i.Op0Register, WithElement(GetXmm(s, i.Op0Register), size, sel, e));
                return true;
            }
            case Mnemonic.Insertps:
            {
                SseEnter(s, i);
                int imm = i.Immediate8;
                // A register source gives lane imm[7:6]; a memory source is one m32 (imm[7:6] ignored).
                ulong e = i.Op1Kind == OpKind.Register ? Element(GetXmm(s, i.Op1Register), 4, imm >> 6) : Mem.Read32(c, MemAddress(s, i, 4, write: false));
                var r = WithElement(GetXmm(s, i.Op0Register), 4, (imm >> 4) & 3, e);
                for (int k = 0; k < 4; k++) if ((imm & (1 << k)) != 0) r = WithElement(r, 4, k, 0);
                SetXmm(s, i.Op0Register, r);
                return true;
            }
            case Mnemonic.Roundps: case Mnemonic.Roundpd: case Mnemonic.Roundss: case Mnemonic.Roundsd:
                RoundFloat(c, i);
                return true;
            case Mnemonic.Dpps: case Mnemonic.Dppd:
                DotProduct(c, i);
                return true;
            default: return false;
        }
    }

    static ulong Element(Vector128<ulong> v, int size, int k) => size switch
    {
        1 => v.AsByte().GetElement(k), 2 => v.AsUInt16().GetElement(k), 4 => v.AsUInt32().GetElement(k), _ => v.GetElement(k),
    };

    static Vector128<ulong> WithElement(Vector128<ulong> v, int size, int k, ulong e) => size switch
    {
        1 => v.AsByte().WithElement(k, (byte)e).AsUInt64(),
        2 => v.AsUInt16().WithElement(k, (ushort)e).AsUInt64(),
        4 => v.AsUInt32().WithElement(k, (uint)e).AsUInt64(),
        _ => v.WithElement(k, e),
    };

    /// <summary>dest OP src (a = destination, b = source, mask = XMM0 for the variable blends) for the two-operand
    /// SSE4.1 integer instructions and the blends.</summary>
    static Vector128<ulong> Sse41Op(Mnemonic m, Vector128<ulong> a, Vector128<ulong> b, Vector128<ulong> mask, int imm)
    {
        switch (m)
        {
            case Mnemonic.Pminsb: return Vector128.Min(a.AsSByte(), b.AsSByte()).AsUInt64();
            case Mnemonic.Pminsd: return Vector128.Min(a.AsInt32(), b.AsInt32()).AsUInt64();
            case Mnemonic.Pminuw: return Vector128.Min(a.AsUInt16(), b.AsUInt16()).AsUInt64();
            case Mnemonic.Pminud: return Vector128.Min(a.AsUInt32(), b.AsUInt32()).AsUInt64();
            case Mnemonic.Pmaxsb: return Vector128.Max(a.AsSByte(), b.AsSByte()).AsUInt64();
            case Mnemonic.Pmaxsd: return Vector128.Max(a.AsInt32(), b.AsInt32()).AsUInt64();
            case Mnemonic.Pmaxuw: return Vector128.Max(a.AsUInt16(), b.AsUInt16()).AsUInt64();
            case Mnemonic.Pmaxud: return Vector128.Max(a.AsUInt32(), b.AsUInt32()).AsUInt64();
            case Mnemonic.Pmulld: return (a.AsUInt32() * b.AsUInt32()).AsUInt64(); // low 32 bits of each product
            case Mnemonic.Pmuldq: // signed dwords 0 and 2, full 64-bit products
                return Vector128.Create((ulong)((long)a.AsInt32()[0] * b.AsInt32()[0]), (ulong)((long)a.AsInt32()[2] * b.AsInt32()[2]));
            case Mnemonic.Pcmpeqq: return Vector128.Equals(a, b);
            case Mnemonic.Movntdqa: return b;
            case Mnemonic.Packusdw:
            {
                var r = Vector128<ushort>.Zero;
                for (int k = 0; k < 8; k++) r = r.WithElement(k, SatU16((k < 4 ? a : b).AsInt32()[k & 3]));
                return r.AsUInt64();
            }
            case Mnemonic.Phminposuw:
            {
                // The smallest unsigned word of the source (lowest index on a tie) in bits 15:0, its index in 18:16.
                var w = b.AsUInt16();
                int idx = 0;
                for (int k = 1; k < 8; k++) if (w[k] < w[idx]) idx = k;
                return Vector128.Create(w[idx] | (ulong)idx << 16, 0UL);
            }
            case Mnemonic.Pblendw: return Blend(a, b, 2, imm);
            case Mnemonic.Blendps: return Blend(a, b, 4, imm);
            case Mnemonic.Blendpd: return Blend(a, b, 8, imm);
            // The variable blends take each element from the source where the top bit of XMM0's element is set.
            case Mnemonic.Pblendvb: return Vector128.ConditionalSelect(Vector128.ShiftRightArithmetic(mask.AsSByte(), 7).AsUInt64(), b, a);
            case Mnemonic.Blendvps: return Vector128.ConditionalSelect(Vector128.ShiftRightArithmetic(mask.AsInt32(), 31).AsUInt64(), b, a);
            case Mnemonic.Blendvpd: return Vector128.ConditionalSelect(Vector128.ShiftRightArithmetic(mask.AsInt64(), 63).AsUInt64(), b, a);
            default: return Mpsadbw(a, b, imm);
        }
    }

    /// <summary>PBLENDW/BLENDPS/BLENDPD: element k from the source where imm8 bit k is set.</summary>
    static Vector128<ulong> Blend(Vector128<ulong> a, Vector128<ulong> b, int size, int imm)
    {
        for (int k = 0; k < 16 / size; k++)
            if ((imm & (1 << k)) != 0) a = WithElement(a, size, k, Element(b, size, k));
        return a;
    }

    /// <summary>MPSADBW: eight sums of absolute differences between the source's 4-byte block imm[1:0] and the eight
    /// overlapping 4-byte windows of the destination starting at byte 4 * imm[2].</summary>
    static Vector128<ulong> Mpsadbw(Vector128<ulong> a, Vector128<ulong> b, int imm)
    {
        var ab = a.AsByte();
        var bb = b.AsByte();
        int ao = 4 * ((imm >> 2) & 1), bo = 4 * (imm & 3);
        var r = Vector128<ushort>.Zero;
        for (int k = 0; k < 8; k++)
        {
            int sum = 0;
            for (int j = 0; j < 4; j++) sum += Math.Abs(ab[ao + k + j] - bb[bo + j]);
            r = r.WithElement(k, (ushort)sum);
        }
        return r.AsUInt64();
    }

    /// <summary>PMOVSX/PMOVZX: the low elements of xmm or an m16/m32/m64 (no alignment) widened to fill 128 bits.</summary>
    static void PackedMoveExtend(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        bool signed = m is Mnemonic.Pmovsxbw or Mnemonic.Pmovsxbd or Mnemonic.Pmovsxbq or Mnemonic.Pmovsxwd or Mnemonic.Pmovsxwq or Mnemonic.Pmovsxdq;
        (int from, int to) = m switch
        {
            Mnemonic.Pmovsxbw or Mnemonic.Pmovzxbw => (1, 2), Mnemonic.Pmovsxbd or Mnemonic.Pmovzxbd => (1, 4),
            Mnemonic.Pmovsxbq or Mnemonic.Pmovzxbq => (1, 8), Mnemonic.Pmovsxwd or Mnemonic.Pmovzxwd => (2, 4),
            Mnemonic.Pmovsxwq or Mnemonic.Pmovzxwq => (2, 8), _ => (4, 8),
        };
        int count = 16 / to;
        ulong src = i.Op1Kind == OpKind.Register ? s->Xmm[XmmSlot(i.Op1Register)] : Mem.Read(c, MemAddress(s, i, count * from, write: false), count * from);
        var r = Vector128<ulong>.Zero;
        for (int k = 0; k < count; k++)
        {
            ulong e = (src >> (8 * from * k)) & (from == 4 ? 0xFFFF_FFFFUL : (1UL << (8 * from)) - 1);
            r = WithElement(r, to, k, signed ? SignExtend(e, from) : e);
        }
        SetXmm(s, i.Op0Register, r);
    }

    /// <summary>ROUNDPS/PD/SS/SD: round to an integral value by imm[1:0], or by MXCSR.RC when imm[2] is set; imm[3]
    /// suppresses the precision exception. An SNaN raises IE and is quieted; no other exception can occur, and DAZ
    /// applies to denormal inputs.</summary>
    static void RoundFloat(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        bool dbl = m is Mnemonic.Roundpd or Mnemonic.Roundsd, scalar = m is Mnemonic.Roundss or Mnemonic.Roundsd;
        SseSource(c, i, 1, scalar ? (dbl ? 8 : 4) : 16, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong rlo = s->Xmm[d], rhi = s->Xmm[d + 1];
        int imm = i.Immediate8;
        var e = SseEnv(s, dbl);
        if ((imm & 4) == 0) e.Rc = imm & 3;
        bool daz = Daz(s);
        for (int k = 0; k < (scalar ? 1 : dbl ? 2 : 4); k++)
        {
            bool den = false;
            var x = SseUnpack(Lane(blo, bhi, k, dbl), dbl, daz, ref den);
            SetLane(ref rlo, ref rhi, k, dbl, SsePack(SoftFloat80.RoundInt(ref e, x), dbl));
        }
        if ((imm & 8) != 0) e.Flags &= ~FpFlags.PE;
        SseFinish(s, e);
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }

    /// <summary>DPPS/DPPD: the products of the lanes selected by imm[7:4] (others +0.0), summed pairwise (DPPS:
    /// (p0 + p1) + (p2 + p3)), each step rounded under MXCSR; the sum goes to the lanes selected by imm[3:0], +0.0 to
    /// the others. Flags of every multiplication and addition are merged.</summary>
    static void DotProduct(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        bool dbl = i.Mnemonic == Mnemonic.Dppd;
        int lanes = dbl ? 2 : 4, imm = i.Immediate8;
        SseSource(c, i, 1, 16, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong alo = s->Xmm[d], ahi = s->Xmm[d + 1];
        var all = SseEnv(s, dbl);
        bool daz = Daz(s);
        Span<ulong> p = stackalloc ulong[4];
        for (int k = 0; k < lanes; k++)
            p[k] = (imm & (16 << k)) != 0 ? SseAddLane(ref all, Lane(alo, ahi, k, dbl), Lane(blo, bhi, k, dbl), false, dbl, daz, multiply: true) : 0;
        ulong sum = dbl
            ? SseAddLane(ref all, p[0], p[1], false, dbl, daz)
            : SseAddLane(ref all, SseAddLane(ref all, p[0], p[1], false, dbl, daz), SseAddLane(ref all, p[2], p[3], false, dbl, daz), false, dbl, daz);
        ulong rlo = 0, rhi = 0;
        for (int k = 0; k < lanes; k++) if ((imm & (1 << k)) != 0) SetLane(ref rlo, ref rhi, k, dbl, sum);
        SseFinish(s, all);
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }
}
