using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>MUL, IMUL (one, two and three operands), DIV, IDIV (SDM Vol. 2A "MUL", "IMUL", "DIV", "IDIV").</summary>
/// <remarks>CF = OF say whether the product needed its high half. SF/ZF/AF/PF are undefined: SF, ZF and PF
/// follow the low half of the product and AF is cleared. DIV/IDIV leave all flags unchanged (all undefined).
/// Quotients that do not fit raise #DE, checked before any register is written.</remarks>
public static unsafe partial class Interp
{
    static bool TryExecuteMulDiv(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Mul: Mul(c, i); return true;
            case Mnemonic.Imul:
                if (i.OpCount == 1) ImulWide(c, i); else ImulTruncating(c, i);
                return true;
            case Mnemonic.Div: Div(c, i); return true;
            case Mnemonic.Idiv: Idiv(c, i); return true;
            default: return false;
        }
    }

    static void MulSetFlags(CpuState* s, ulong low, int size, bool overflow)
    {
        ulong f = ShiftSzp(low, size);
        if (overflow) f |= RFlags.CF | RFlags.OF;
        Flags.SetStatus(s, RFlags.Status, f);
    }

    static void Mul(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong b = ReadOp(c, i, 0, size);
        ulong lo, hi;
        switch (size)
        {
            case 1:
            {
                ulong p = (s->Gpr[0] & 0xFF) * b;
                WriteReg(s, Register.AX, p);
                lo = p & 0xFF; hi = p >> 8;
                break;
            }
            case 2:
            {
                ulong p = (s->Gpr[0] & 0xFFFF) * b;
                lo = p & 0xFFFF; hi = p >> 16;
                WriteReg(s, Register.AX, lo); WriteReg(s, Register.DX, hi);
                break;
            }
            case 4:
            {
                ulong p = (s->Gpr[0] & 0xFFFF_FFFF) * b;
                lo = p & 0xFFFF_FFFF; hi = p >> 32;
                s->Gpr[0] = lo; s->Gpr[2] = hi;
                break;
            }
            default:
                hi = Math.BigMul(s->Gpr[0], b, out lo);
                s->Gpr[0] = lo; s->Gpr[2] = hi;
                break;
        }
        MulSetFlags(s, lo, size, hi != 0);
    }

    /// <summary>One-operand IMUL: the double-width signed product in AX, DX:AX, EDX:EAX or RDX:RAX.</summary>
    static void ImulWide(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        long b = (long)SignExtend(ReadOp(c, i, 0, size), size);
        long a = (long)SignExtend(s->Gpr[0], size);
        ulong lo;
        bool overflow;
        switch (size)
        {
            case 1:
            {
                long p = a * b;
                WriteReg(s, Register.AX, (ulong)p);
                lo = (ulong)p & 0xFF;
                overflow = p != (sbyte)p;
                break;
            }
            case 2:
            {
                long p = a * b;
                lo = (ulong)p & 0xFFFF;
                WriteReg(s, Register.AX, lo); WriteReg(s, Register.DX, (ulong)p >> 16);
                overflow = p != (short)p;
                break;
            }
            case 4:
            {
                long p = a * b;
                lo = (ulong)p & 0xFFFF_FFFF;
                s->Gpr[0] = lo; s->Gpr[2] = ((ulong)p >> 32) & 0xFFFF_FFFF;
                overflow = p != (int)p;
                break;
            }
            default:
            {
                long hi = Math.BigMul(a, b, out long l);
                lo = (ulong)l;
                s->Gpr[0] = lo; s->Gpr[2] = (ulong)hi;
                overflow = hi != (l >> 63);
                break;
            }
        }
        MulSetFlags(s, lo, size, overflow);
    }

    /// <summary>Two- and three-operand IMUL: the product truncated to the destination register.</summary>
    static void ImulTruncating(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        // Two operands multiply the destination by r/m; three multiply r/m by an immediate (sign-extended by Iced).
        ulong x = i.OpCount == 2 ? ReadReg(s, i.Op0Register) : ReadOp(c, i, 1, size);
        ulong y = i.OpCount == 2 ? ReadOp(c, i, 1, size) : i.GetImmediate(2);
        long a = (long)SignExtend(x, size), b = (long)SignExtend(y, size);
        ulong lo;
        bool overflow;
        if (size == 8)
        {
            long hi = Math.BigMul(a, b, out long l);
            lo = (ulong)l;
            overflow = hi != (l >> 63);
        }
        else
        {
            long p = a * b; // |a|, |b| < 2^31: no 64-bit overflow
            lo = (ulong)p & Flags.SizeMask(size);
            overflow = p != (long)SignExtend(lo, size);
        }
        WriteReg(s, i.Op0Register, lo);
        MulSetFlags(s, lo, size, overflow);
    }

    static void Div(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong d = ReadOp(c, i, 0, size);
        if (d == 0) throw CpuFault.DE();
        switch (size)
        {
            case 1:
            {
                ulong n = s->Gpr[0] & 0xFFFF;
                ulong q = n / d;
                if (q > 0xFF) throw CpuFault.DE();
                WriteReg(s, Register.AX, ((n % d) << 8) | q);
                return;
            }
            case 2:
            {
                ulong n = ((s->Gpr[2] & 0xFFFF) << 16) | (s->Gpr[0] & 0xFFFF);
                ulong q = n / d;
                if (q > 0xFFFF) throw CpuFault.DE();
                WriteReg(s, Register.AX, q); WriteReg(s, Register.DX, n % d);
                return;
            }
            case 4:
            {
                ulong n = ((s->Gpr[2] & 0xFFFF_FFFF) << 32) | (s->Gpr[0] & 0xFFFF_FFFF);
                ulong q = n / d;
                if (q > 0xFFFF_FFFF) throw CpuFault.DE();
                s->Gpr[0] = q; s->Gpr[2] = n % d;
                return;
            }
            default:
            {
                ulong hi = s->Gpr[2], lo = s->Gpr[0];
                if (hi >= d) throw CpuFault.DE(); // the quotient would need more than 64 bits
                if (hi == 0)
                {
                    s->Gpr[0] = lo / d; s->Gpr[2] = lo % d;
                    return;
                }
                UInt128 n = new(hi, lo);
                s->Gpr[0] = (ulong)(n / d); s->Gpr[2] = (ulong)(n % d);
                return;
            }
        }
    }

    static void Idiv(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        long d = (long)SignExtend(ReadOp(c, i, 0, size), size);
        if (d == 0) throw CpuFault.DE();
        if (size == 8)
        {
            Idiv64(s, d);
            return;
        }
        long n = size switch
        {
            1 => (short)s->Gpr[0],
            2 => (int)(((s->Gpr[2] & 0xFFFF) << 16) | (s->Gpr[0] & 0xFFFF)),
            _ => (long)(((s->Gpr[2] & 0xFFFF_FFFF) << 32) | (s->Gpr[0] & 0xFFFF_FFFF)),
        };
        // long.MinValue / -1 would overflow the host division: that dividend can only come from the 32-bit form,
        // whose quotient 2^63 is out of range anyway.
        if (d == -1 && n == long.MinValue) throw CpuFault.DE();
        long q = n / d, r = n % d;
        long limit = 1L << (size * 8 - 1);
        if (q >= limit || q < -limit) throw CpuFault.DE();
        switch (size)
        {
            case 1: WriteReg(s, Register.AX, (((ulong)r & 0xFF) << 8) | ((ulong)q & 0xFF)); break;
            case 2: WriteReg(s, Register.AX, (ulong)q); WriteReg(s, Register.DX, (ulong)r); break;
            default: s->Gpr[0] = (uint)q; s->Gpr[2] = (uint)r; break;
        }
    }

    static void Idiv64(CpuState* s, long d)
    {
        ulong hi = s->Gpr[2], lo = s->Gpr[0];
        long q, r;
        if (hi == (ulong)((long)lo >> 63))
        {
            // The dividend fits in 64 bits: only long.MinValue / -1 overflows.
            long n = (long)lo;
            if (n == long.MinValue && d == -1) throw CpuFault.DE();
            q = n / d; r = n % d;
        }
        else
        {
            // The dividend needs more than 64 bits, so n / -1 does not fit either (and Int128.MinValue / -1 would
            // overflow the host division).
            if (d == -1) throw CpuFault.DE();
            Int128 n = (Int128)new UInt128(hi, lo);
            Int128 q128 = n / d;
            if (q128 > long.MaxValue || q128 < long.MinValue) throw CpuFault.DE();
            q = (long)q128; r = (long)(n % d);
        }
        s->Gpr[0] = (ulong)q; s->Gpr[2] = (ulong)r;
    }
}
