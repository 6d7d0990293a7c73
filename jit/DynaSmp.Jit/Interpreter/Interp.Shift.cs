using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD (SDM Vol. 2B "SAL/SAR/SHL/SHR",
/// "RCL/RCR/ROL/ROR", "SHLD", "SHRD"). Flags are written eagerly: a masked count of 0 changes no flag.</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteShift(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
                ShiftRotate(c, i);
                return true;
            case Mnemonic.Shld: case Mnemonic.Shrd:
                ShiftDouble(c, i);
                return true;
            default:
                return false;
        }
    }

    /// <summary>SF, ZF and PF of a result of <paramref name="size"/> bytes.</summary>
    static ulong ShiftSzp(ulong res, int size)
    {
        ulong f = Flags.Parity(res);
        if ((res & Flags.SizeMask(size)) == 0) f |= RFlags.ZF;
        if ((res & Flags.SignBit(size)) != 0) f |= RFlags.SF;
        return f;
    }

    /// <summary>Reads a read-modify-write destination (operand 0), returning the linear address when it is memory.</summary>
    static ulong ShiftReadDest(CpuCore c, in Instruction i, int size, out ulong lin)
    {
        if (i.Op0Kind == OpKind.Register) { lin = 0; return ReadReg(c.State, i.Op0Register); }
        lin = MemAddress(c.State, i, size, write: true); // read-modify-write
        return Mem.Read(c, lin, size);
    }

    static void ShiftWriteDest(CpuCore c, in Instruction i, int size, ulong lin, ulong v)
    {
        if (i.Op0Kind == OpKind.Register) WriteReg(c.State, i.Op0Register, v);
        else Mem.Write(c, lin, size, v);
    }

    static int ShiftCount(CpuState* s, in Instruction i, int op, int size)
    {
        ulong raw = i.GetOpKind(op) == OpKind.Register ? s->Gpr[1] & 0xFF : i.GetImmediate(op);
        return (int)(raw & (size == 8 ? 0x3FUL : 0x1FUL));
    }

    static void ShiftRotate(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        int bits = size * 8;
        ulong mask = Flags.SizeMask(size), sign = Flags.SignBit(size);
        int count = ShiftCount(s, i, 1, size);
        ulong a = ShiftReadDest(c, i, size, out ulong lin) & mask;
        if (count == 0)
        {
            // Flags unchanged; the destination is still written (a 32-bit register destination is zero-extended).
            ShiftWriteDest(c, i, size, lin, a);
            return;
        }
        ulong res = ShiftRotateCore(s, i.Mnemonic, size, a, count, out ulong statusMask, out ulong f);
        ShiftWriteDest(c, i, size, lin, res);
        // AF is undefined for shifts; it is cleared (rotates leave it, with SF/ZF/PF, untouched).
        Flags.SetStatus(s, statusMask, f);
    }

    /// <summary>Tier 1's flags for a shift or rotate whose flags are read: the same computation as tier 0. A masked
    /// count of 0 changes no flag.</summary>
    public static void ShiftRotateFlags(CpuState* s, int mnemonic, int size, ulong a, int count)
    {
        if (count == 0) return;
        ShiftRotateCore(s, (Mnemonic)mnemonic, size, a & Flags.SizeMask(size), count, out ulong statusMask, out ulong f);
        Flags.SetStatus(s, statusMask, f);
    }

    /// <summary>SDM SAL/SAR/SHL/SHR and RCL/RCR/ROL/ROR for a non-zero masked <paramref name="count"/>: the result, and
    /// the status flags it writes (<paramref name="statusMask"/>) with their values. Reads CF for RCL/RCR; writes nothing.</summary>
    static ulong ShiftRotateCore(CpuState* s, Mnemonic m, int size, ulong a, int count, out ulong statusMask, out ulong f)
    {
        int bits = size * 8;
        ulong mask = Flags.SizeMask(size), sign = Flags.SignBit(size);
        ulong res, cf, of;
        statusMask = RFlags.Status;
        switch (m)
        {
            case Mnemonic.Shl: case Mnemonic.Sal:
                res = (a << count) & mask;
                // The last bit out is bit (bits - count); past the operand width every bit shifted out is 0.
                cf = count <= bits ? (a >> (bits - count)) & 1 : 0;
                of = ((res & sign) != 0 ? 1UL : 0UL) ^ cf;
                f = ShiftSzp(res, size);
                break;
            case Mnemonic.Shr:
                res = a >> count;
                cf = (a >> (count - 1)) & 1;
                of = (a & sign) != 0 ? 1UL : 0UL;
                f = ShiftSzp(res, size);
                break;
            case Mnemonic.Sar:
            {
                long sa = (long)SignExtend(a, size);
                res = (ulong)(sa >> count) & mask;
                cf = (ulong)(sa >> (count - 1)) & 1;
                of = 0;
                f = ShiftSzp(res, size);
                break;
            }
            case Mnemonic.Rol:
            {
                // tempCOUNT = (COUNT & COUNTMASK) MOD SIZE; CF = LSB(result) whenever the masked count is non-zero.
                int n = count % bits;
                res = n == 0 ? a : ((a << n) | (a >> (bits - n))) & mask;
                cf = res & 1;
                of = ((res & sign) != 0 ? 1UL : 0UL) ^ cf;
                statusMask = RFlags.CF | RFlags.OF;
                f = 0;
                break;
            }
            case Mnemonic.Ror:
            {
                int n = count % bits;
                res = n == 0 ? a : ((a >> n) | (a << (bits - n))) & mask;
                cf = (res & sign) != 0 ? 1UL : 0UL;
                of = cf ^ ((res >> (bits - 2)) & 1);
                statusMask = RFlags.CF | RFlags.OF;
                f = 0;
                break;
            }
            case Mnemonic.Rcl:
            {
                // The rotate goes through CF: SIZE+1 bits, so 8/16-bit counts are taken modulo 9/17.
                int n = size == 1 ? count % 9 : size == 2 ? count % 17 : count;
                cf = Flags.Get(s) & RFlags.CF;
                res = a;
                for (int k = 0; k < n; k++)
                {
                    ulong outBit = (res & sign) != 0 ? 1UL : 0UL;
                    res = ((res << 1) | cf) & mask;
                    cf = outBit;
                }
                of = ((res & sign) != 0 ? 1UL : 0UL) ^ cf;
                // A masked count that is a multiple of 9/17 rotates nothing and leaves CF and OF (host-checked).
                statusMask = n == 0 ? 0 : RFlags.CF | RFlags.OF;
                f = 0;
                break;
            }
            default: // Rcr
            {
                int n = size == 1 ? count % 9 : size == 2 ? count % 17 : count;
                cf = Flags.Get(s) & RFlags.CF;
                res = a;
                for (int k = 0; k < n; k++)
                {
                    ulong outBit = res & 1;
                    res = (res >> 1) | (cf != 0 ? sign : 0);
                    cf = outBit;
                }
                // Count 1: OF = MSB(DEST) XOR CF before the rotate, which equals the XOR of the result's two top bits.
                of = ((res >> (bits - 1)) ^ (res >> (bits - 2))) & 1;
                statusMask = n == 0 ? 0 : RFlags.CF | RFlags.OF;
                f = 0;
                break;
            }
        }
        if (cf != 0) f |= RFlags.CF;
        if (of != 0) f |= RFlags.OF;
        return res;
    }

    /// <summary>SHLD/SHRD: the destination shifted with bits coming in from the source register.</summary>
    static void ShiftDouble(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong mask = Flags.SizeMask(size);
        int count = ShiftCount(s, i, 2, size);
        ulong a = ShiftReadDest(c, i, size, out ulong lin) & mask;
        ulong b = ReadReg(s, i.Op1Register) & mask;
        if (count == 0)
        {
            ShiftWriteDest(c, i, size, lin, a);
            return;
        }
        ulong res = ShiftDoubleCore(i.Mnemonic == Mnemonic.Shld, size, a, b, count, out ulong f);
        ShiftWriteDest(c, i, size, lin, res);
        Flags.SetStatus(s, RFlags.Status, f);
    }

    /// <summary>Tier 1's SHLD/SHRD result for a masked count (0 gives the destination unchanged).</summary>
    public static ulong ShiftDoubleResult(int left, int size, ulong a, ulong b, int count)
    {
        ulong mask = Flags.SizeMask(size);
        return count == 0 ? a & mask : ShiftDoubleCore(left != 0, size, a & mask, b & mask, count, out _);
    }

    /// <summary>Tier 1's SHLD/SHRD flags when they are read: tier 0's computation; a count of 0 changes none.</summary>
    public static void ShiftDoubleFlags(CpuState* s, int left, int size, ulong a, ulong b, int count)
    {
        if (count == 0) return;
        ulong mask = Flags.SizeMask(size);
        ShiftDoubleCore(left != 0, size, a & mask, b & mask, count, out ulong f);
        Flags.SetStatus(s, RFlags.Status, f);
    }

    /// <summary>SDM SHLD/SHRD for a non-zero masked count: the result and the status flags it sets.</summary>
    static ulong ShiftDoubleCore(bool left, int size, ulong a, ulong b, int count, out ulong f)
    {
        int bits = size * 8;
        ulong mask = Flags.SizeMask(size), sign = Flags.SignBit(size);
        ulong res, cf;
        if (size == 2)
        {
            // A 16-bit count can exceed 16 (undefined in the SDM). P6 and later shift the 48-bit value DEST:SRC:DEST,
            // so bits of DEST come back in; doing the same keeps counts 17..31 deterministic.
            ulong v = (a << 32) | (b << 16) | a;
            if (left)
            {
                res = (v << count >> 32) & mask;
                cf = (v >> (48 - count)) & 1;
            }
            else
            {
                res = (v >> count) & mask;
                cf = (v >> (count - 1)) & 1;
            }
        }
        else if (left)
        {
            res = ((a << count) | (b >> (bits - count))) & mask;
            cf = (a >> (bits - count)) & 1;
        }
        else
        {
            res = ((a >> count) | (b << (bits - count))) & mask;
            cf = (a >> (count - 1)) & 1;
        }
        // OF is defined for count 1 (a sign change); for larger counts hardware reports MSB(result) XOR CF for
        // SHLD and the XOR of the result's two top bits for SHRD, which are the same formulas at count 1.
        ulong of = left ? ((res & sign) != 0 ? 1UL : 0UL) ^ cf : ((res >> (bits - 1)) ^ (res >> (bits - 2))) & 1;
        f = ShiftSzp(res, size);
        if (cf != 0) f |= RFlags.CF;
        if (of != 0) f |= RFlags.OF;
        return res;
    }
}
