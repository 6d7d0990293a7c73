using System.Numerics;
using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE4.2 (legacy encodings): PCMPGTQ, CRC32 and the packed string compares PCMPESTRI/PCMPESTRM/PCMPISTRI/
/// PCMPISTRM (SDM Vol. 2 4.1, "Imm8 Control Byte Operation for PCMPESTRI / PCMPESTRM / PCMPISTRI / PCMPISTRM").
/// POPCNT, reported with SSE4.2's CPUID bit neighbour, is in Interp.Bits.cs.</summary>
public static unsafe partial class Interp
{
    static bool TrySse42(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Pcmpgtq:
            {
                SseEnter(s, i);
                Vector128<ulong> b = ReadXmmM128(c, i, 1);
                SetXmm(s, i.Op0Register, Vector128.GreaterThan(GetXmm(s, i.Op0Register).AsInt64(), b.AsInt64()).AsUInt64());
                return true;
            }
            case Mnemonic.Crc32:
            {
                // A general-register instruction: no SSE enable checks; LOCK is #UD.
                if (i.HasLockPrefix) throw CpuFault.UD();
                int size = OpSize(i, 1);
                ulong v = ReadOp(c, i, 1, size);
                uint crc = (uint)ReadReg(s, i.Op0Register);
                crc = size switch
                {
                    1 => BitOperations.Crc32C(crc, (byte)v),
                    2 => BitOperations.Crc32C(crc, (ushort)v),
                    4 => BitOperations.Crc32C(crc, (uint)v),
                    _ => BitOperations.Crc32C(crc, v),
                };
                WriteReg(s, i.Op0Register, crc); // a 64-bit destination gets the CRC zero-extended
                return true;
            }
            case Mnemonic.Pcmpestri: case Mnemonic.Pcmpestri64: case Mnemonic.Pcmpestrm: case Mnemonic.Pcmpestrm64:
            case Mnemonic.Pcmpistri: case Mnemonic.Pcmpistrm:
                PackedStringCompare(c, i);
                return true;
            default: return false;
        }
    }

    /// <summary>The four string compares. imm[1:0]: unsigned/signed bytes/words; imm[3:2]: aggregation (equal any,
    /// ranges, equal each, equal ordered); imm[5:4]: polarity; imm[6]: most significant index / expanded mask.
    /// Lengths are explicit (|EAX|, |EDX|, or RAX/RDX with REX.W, saturated to the element count) or implicit (up to
    /// the first zero element). The m128 operand has no alignment requirement (SDM PCMPESTRI).</summary>
    static void PackedStringCompare(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        int imm = i.Immediate8;
        bool words = (imm & 1) != 0, signed = (imm & 2) != 0;
        int n = words ? 8 : 16;
        Vector128<ulong> a = GetXmm(s, i.Op0Register), b = ReadXmmM128(c, i, 1, aligned: false);
        bool explicitLength = m is Mnemonic.Pcmpestri or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm or Mnemonic.Pcmpestrm64;
        int la, lb;
        if (explicitLength)
        {
            bool wide = m is Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64;
            la = ExplicitLength(s->Gpr[0], wide, n);
            lb = ExplicitLength(s->Gpr[2], wide, n);
        }
        else
        {
            la = ImplicitLength(a, words);
            lb = ImplicitLength(b, words);
        }
        uint res1 = StringAggregate(a, b, la, lb, imm, n, words, signed);
        uint full = (1u << n) - 1;
        uint res2 = ((imm >> 4) & 3) switch
        {
            1 => ~res1 & full,                          // negative polarity
            3 => res1 ^ (full & ((1u << lb) - 1)),      // masked negative: only the valid elements of the second operand
            _ => res1,
        };
        if (m is Mnemonic.Pcmpestri or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpistri)
        {
            int index = res2 == 0 ? n : (imm & 0x40) != 0 ? 31 - BitOperations.LeadingZeroCount(res2) : BitOperations.TrailingZeroCount(res2);
            s->Gpr[1] = (uint)index; // ECX, zero-extended
        }
        else
        {
            Vector128<ulong> mask;
            if ((imm & 0x40) == 0) mask = Vector128.Create((ulong)res2, 0UL);
            else
            {
                mask = Vector128<ulong>.Zero;
                int size = words ? 2 : 1;
                for (int k = 0; k < n; k++) if ((res2 & (1u << k)) != 0) mask = WithElement(mask, size, k, ulong.MaxValue);
            }
            SetXmm(s, Register.XMM0, mask);
        }
        ulong f = (res2 != 0 ? RFlags.CF : 0) | (lb < n ? RFlags.ZF : 0) | (la < n ? RFlags.SF : 0) | ((res2 & 1) != 0 ? RFlags.OF : 0);
        Flags.SetStatus(s, RFlags.Status, f); // AF and PF cleared
    }

    static int ExplicitLength(ulong reg, bool wide, int n)
    {
        long v = wide ? (long)reg : (int)reg;
        return v >= n || v <= -n ? n : (int)Math.Abs(v);
    }

    static int ImplicitLength(Vector128<ulong> v, bool words)
    {
        int n = words ? 8 : 16;
        for (int k = 0; k < n; k++) if (Element(v, words ? 2 : 1, k) == 0) return k;
        return n;
    }

    static int StringElement(Vector128<ulong> v, int k, bool words, bool signed)
    {
        ulong e = Element(v, words ? 2 : 1, k);
        return signed ? (int)(long)SignExtend(e, words ? 2 : 1) : (int)e;
    }

    /// <summary>IntRes1 of the aggregation imm[3:2]: bit j over the elements j of the second operand (b), compared with
    /// the elements i of the first (a), with the SDM's overrides for elements past each length.</summary>
    static uint StringAggregate(Vector128<ulong> a, Vector128<ulong> b, int la, int lb, int imm, int n, bool words, bool signed)
    {
        uint res = 0;
        switch ((imm >> 2) & 3)
        {
            case 0: // equal any: b[j] is one of a[0..la)
                for (int j = 0; j < lb; j++)
                    for (int k = 0; k < la; k++)
                        if (StringElement(a, k, words, signed) == StringElement(b, j, words, signed)) { res |= 1u << j; break; }
                break;
            case 1: // ranges: a[2k] <= b[j] <= a[2k+1] for some complete valid pair
                for (int j = 0; j < lb; j++)
                {
                    int x = StringElement(b, j, words, signed);
                    for (int k = 0; k + 1 < la; k += 2)
                        if (StringElement(a, k, words, signed) <= x && x <= StringElement(a, k + 1, words, signed)) { res |= 1u << j; break; }
                }
                break;
            case 2: // equal each: a[j] == b[j]; both past their lengths counts as equal, one past as not equal
                for (int j = 0; j < n; j++)
                {
                    bool va = j < la, vb = j < lb;
                    bool eq = va && vb ? StringElement(a, j, words, signed) == StringElement(b, j, words, signed) : !va && !vb;
                    if (eq) res |= 1u << j;
                }
                break;
            default: // equal ordered: a[0..la) occurs in b starting at j; a past its length matches anything
                for (int j = 0; j < n; j++)
                {
                    bool match = true;
                    for (int k = 0; k < n - j && match; k++)
                    {
                        if (k >= la) break;
                        match = j + k < lb && StringElement(a, k, words, signed) == StringElement(b, j + k, words, signed);
                    }
                    if (match) res |= 1u << j;
                }
                break;
        }
        return res;
    }
}
