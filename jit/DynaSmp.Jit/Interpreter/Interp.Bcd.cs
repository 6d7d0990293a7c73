using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Decimal-arithmetic adjusts DAA, DAS, AAA, AAS, AAM, AAD (invalid in 64-bit mode) and the other
/// legacy helpers ENTER and XLAT (SDM Vol. 2A pages of the same names).</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteBcd(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Daa: case Mnemonic.Das: case Mnemonic.Aaa: case Mnemonic.Aas: case Mnemonic.Aam: case Mnemonic.Aad:
                if ((c.State->Mode & ExecMode.SizeMask) == ExecMode.Code64) throw CpuFault.UD();
                DecimalAdjust(c.State, i);
                return true;
            case Mnemonic.Enter: Enter(c, i); return true;
            case Mnemonic.Xlatb: WriteReg(c.State, Register.AL, Mem.Read8(c, MemAddress(c.State, i))); return true;
            default: return false;
        }
    }

    static void DecimalAdjust(CpuState* s, in Instruction i)
    {
        ulong f = Flags.Get(s);
        bool cf = (f & RFlags.CF) != 0, af = (f & RFlags.AF) != 0;
        uint al = (uint)s->Gpr[0] & 0xFF, ah = (uint)(s->Gpr[0] >> 8) & 0xFF;
        ulong mask;
        switch (i.Mnemonic)
        {
            case Mnemonic.Daa:
            case Mnemonic.Das:
            {
                bool add = i.Mnemonic == Mnemonic.Daa;
                uint oldAl = al;
                bool oldCf = cf;
                cf = false;
                if ((al & 0xF) > 9 || af)
                {
                    // DAS keeps CF set by the low-nibble borrow even when the high adjust is skipped.
                    cf = oldCf || (add ? al + 6 > 0xFF : al < 6);
                    al = (add ? al + 6 : al - 6) & 0xFF;
                    af = true;
                }
                else af = false;
                if (oldAl > 0x99 || oldCf)
                {
                    al = (add ? al + 0x60 : al - 0x60) & 0xFF;
                    cf = true;
                }
                else if (add) cf = false;
                WriteReg(s, Register.AL, al);
                mask = RFlags.Status; // OF is undefined: cleared
                f = ShiftSzp(al, 1);
                break;
            }
            case Mnemonic.Aaa:
            case Mnemonic.Aas:
            {
                if ((al & 0xF) > 9 || af)
                {
                    if (i.Mnemonic == Mnemonic.Aaa) { al += 6; ah += 1 + (al >> 8); } // AX <- AX + 106H
                    else { ah -= 1 + (al < 6 ? 1u : 0u); al -= 6; }                 // AX <- AX - 6; AH <- AH - 1
                    af = cf = true;
                }
                else af = cf = false;
                WriteReg(s, Register.AX, ((ah & 0xFF) << 8) | (al & 0xF));
                mask = RFlags.CF | RFlags.AF; // OF, SF, ZF, PF are undefined: left unchanged
                f = 0;
                break;
            }
            case Mnemonic.Aam:
            {
                uint imm = i.Immediate8;
                if (imm == 0) throw CpuFault.DE();
                uint q = al / imm, r = al % imm;
                WriteReg(s, Register.AX, ((q & 0xFF) << 8) | r);
                mask = RFlags.Status; // OF, AF, CF are undefined: cleared
                f = ShiftSzp(r, 1);
                cf = af = false;
                break;
            }
            default: // Aad
            {
                uint res = (al + ah * i.Immediate8) & 0xFF;
                WriteReg(s, Register.AX, res);
                mask = RFlags.Status; // OF, AF, CF are undefined: cleared
                f = ShiftSzp(res, 1);
                cf = af = false;
                break;
            }
        }
        if (cf) f |= RFlags.CF;
        if (af) f |= RFlags.AF;
        Flags.SetStatus(s, mask, f);
    }

    /// <summary>ENTER imm16, imm8: push the frame pointer, copy NestingLevel-1 outer frame pointers, push the
    /// new frame pointer, then allocate imm16 bytes (SDM "ENTER" Operation; the level is taken modulo 32).</summary>
    static void Enter(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = i.Code switch { Code.Enterw_imm16_imm8 => 2, Code.Enterd_imm16_imm8 => 4, _ => 8 };
        int sa = StackAddrSize(s);
        ulong amask = Flags.SizeMask(sa);
        ulong allocSize = i.Immediate16;
        int level = i.Immediate8_2nd & 31;
        ulong oldRsp = s->Gpr[4], oldRbp = s->Gpr[5];
        try
        {
            Push(c, size, s->Gpr[5]);
            ulong frameTemp = s->Gpr[4] & amask;
            if (level > 0)
            {
                ulong bp = s->Gpr[5] & amask;
                for (int k = 1; k < level; k++)
                {
                    bp = (bp - (ulong)size) & amask;
                    Push(c, size, Mem.Read(c, CheckedLinear(s, Register.SS, bp, size, write: false), size));
                }
                Push(c, size, frameTemp);
            }
            // The allocation itself touches no memory (only pushes fault).
            ulong newRsp = (s->Gpr[4] - allocSize) & amask;
            WriteReg(s, size == 2 ? Register.BP : size == 4 ? Register.EBP : Register.RBP, frameTemp);
            SetStackPointer(s, sa, newRsp);
        }
        catch
        {
            s->Gpr[4] = oldRsp;
            s->Gpr[5] = oldRbp;
            throw;
        }
    }
}
