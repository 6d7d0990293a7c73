using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>FSTENV/FNSTENV, FLDENV, FSAVE/FNSAVE, FRSTOR in the four layouts of SDM Vol. 1 Figures 8-9 to 8-12
/// (16/32-bit operand size x protected/real mode; 64-bit mode uses the 32-bit protected layout).</summary>
public static unsafe partial class Interp
{
    /// <summary>The full tag word (SDM Vol. 1 8.1.7): per physical register 00 valid, 01 zero, 10 special
    /// (NaN, infinity, denormal, unsupported), 11 empty.</summary>
    public static ushort X87FullTag(CpuState* s)
    {
        int tw = 0;
        for (int p = 0; p < 8; p++)
        {
            int t;
            if ((s->FpuTag & (1 << p)) == 0) t = 3;
            else
            {
                var v = Ext80.Load(s->FpuRegs + 10 * p);
                if (v.IsZero) t = 1;
                else if (v.Exp == 0 || v.Exp == Ext80.MaxExp || (v.Mant & Ext80.J) == 0) t = 2;
                else t = 0;
            }
            tw |= t << (2 * p);
        }
        return (ushort)tw;
    }

    static void X87Environment(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        bool wide = i.MemorySize is MemorySize.FpuEnv28 or MemorySize.FpuState108;
        bool state = i.MemorySize is MemorySize.FpuState94 or MemorySize.FpuState108;
        bool real = (s->Mode & ExecMode.Real) != 0 || (Flags.Get(s) & RFlags.VM) != 0;
        int envSize = wide ? 28 : 14;
        int total = envSize + (state ? 80 : 0);
        bool store = m is Mnemonic.Fstenv or Mnemonic.Fnstenv or Mnemonic.Fsave or Mnemonic.Fnsave;
        ulong a = MemAddress(s, i, total, write: store);
        if (store)
        {
            // Every page writable before the first byte is written, so a fault leaves memory unchanged.
            c.Mmu.Translate(a, MemAccess.Write);
            c.Mmu.Translate(a + (ulong)total - 1, MemAccess.Write);
            ushort tw = X87FullTag(s);
            uint ip = (uint)s->FpuIp, dp = (uint)s->FpuDp;
            if (wide)
            {
                Mem.Write32(c, a + 0, 0xFFFF_0000u | s->FpuControl);
                Mem.Write32(c, a + 4, 0xFFFF_0000u | s->FpuStatus);
                Mem.Write32(c, a + 8, 0xFFFF_0000u | tw);
                if (real)
                {
                    Mem.Write32(c, a + 12, 0xFFFF_0000u | (ip & 0xFFFF));
                    Mem.Write32(c, a + 16, (ip >> 16) << 12 | s->FpuOpcode & 0x7FFu);
                    Mem.Write32(c, a + 20, 0xFFFF_0000u | (dp & 0xFFFF));
                    Mem.Write32(c, a + 24, (dp >> 16) << 12);
                }
                else
                {
                    Mem.Write32(c, a + 12, ip);
                    Mem.Write32(c, a + 16, (uint)(s->FpuOpcode & 0x7FF) << 16 | s->FpuCs);
                    Mem.Write32(c, a + 20, dp);
                    Mem.Write32(c, a + 24, 0xFFFF_0000u | s->FpuDs);
                }
            }
            else
            {
                Mem.Write16(c, a + 0, s->FpuControl);
                Mem.Write16(c, a + 2, s->FpuStatus);
                Mem.Write16(c, a + 4, tw);
                Mem.Write16(c, a + 6, (ushort)ip);
                Mem.Write16(c, a + 8, real ? (ushort)((ip >> 16 & 0xF) << 12 | s->FpuOpcode & 0x7FFu) : s->FpuCs);
                Mem.Write16(c, a + 10, (ushort)dp);
                Mem.Write16(c, a + 12, real ? (ushort)((dp >> 16 & 0xF) << 12) : s->FpuDs);
            }
            if (state)
            {
                for (int r = 0; r < 8; r++)
                {
                    byte* reg = s->FpuRegs + 10 * X87Phys(s, r);
                    ulong slot = a + (ulong)(envSize + 10 * r);
                    Mem.Write64(c, slot, *(ulong*)reg);
                    Mem.Write16(c, slot + 8, *(ushort*)(reg + 8));
                }
                // FSAVE then initialises the FPU as FNINIT does.
                s->FpuControl = 0x37F;
                s->FpuStatus = 0;
                s->FpuTag = 0;
                s->FpuOpcode = s->FpuCs = s->FpuDs = 0;
                s->FpuIp = s->FpuDp = 0;
            }
            else s->FpuControl |= 0x3F; // FSTENV masks all exceptions
            return;
        }

        // FLDENV / FRSTOR: read everything first.
        ushort fcw, fsw, ftw, fop = 0, fcs = 0, fds = 0;
        uint fip, fdp;
        if (wide)
        {
            fcw = Mem.Read16(c, a);
            fsw = Mem.Read16(c, a + 4);
            ftw = Mem.Read16(c, a + 8);
            uint w12 = Mem.Read32(c, a + 12), w16 = Mem.Read32(c, a + 16), w20 = Mem.Read32(c, a + 20), w24 = Mem.Read32(c, a + 24);
            if (real)
            {
                fip = (w12 & 0xFFFF) | ((w16 >> 12) & 0xFFFF) << 16;
                fop = (ushort)(w16 & 0x7FF);
                fdp = (w20 & 0xFFFF) | ((w24 >> 12) & 0xFFFF) << 16;
            }
            else
            {
                fip = w12;
                fcs = (ushort)w16;
                fop = (ushort)((w16 >> 16) & 0x7FF);
                fdp = w20;
                fds = (ushort)w24;
            }
        }
        else
        {
            fcw = Mem.Read16(c, a);
            fsw = Mem.Read16(c, a + 2);
            ftw = Mem.Read16(c, a + 4);
            ushort w6 = Mem.Read16(c, a + 6), w8 = Mem.Read16(c, a + 8), w10 = Mem.Read16(c, a + 10), w12 = Mem.Read16(c, a + 12);
            if (real)
            {
                fip = w6 | (uint)(w8 >> 12) << 16;
                fop = (ushort)(w8 & 0x7FF);
                fdp = w10 | (uint)(w12 >> 12) << 16;
            }
            else
            {
                fip = w6;
                fcs = w8;
                fdp = w10;
                fds = w12;
            }
        }
        byte* regs = stackalloc byte[80];
        if (state)
            for (int r = 0; r < 8; r++)
            {
                ulong slot = a + (ulong)(envSize + 10 * r);
                *(ulong*)(regs + 10 * r) = Mem.Read64(c, slot);
                *(ushort*)(regs + 10 * r + 8) = Mem.Read16(c, slot + 8);
            }
        s->FpuControl = X87ControlWord(fcw);
        s->FpuStatus = fsw;
        byte abridged = 0;
        for (int p = 0; p < 8; p++) if (((ftw >> (2 * p)) & 3) != 3) abridged |= (byte)(1 << p);
        s->FpuTag = abridged;
        s->FpuIp = fip; s->FpuDp = fdp; s->FpuOpcode = fop; s->FpuCs = fcs; s->FpuDs = fds;
        if (state)
        {
            int top = (fsw >> 11) & 7;
            for (int r = 0; r < 8; r++)
                for (int k = 0; k < 10; k++) s->FpuRegs[10 * ((top + r) & 7) + k] = regs[10 * r + k];
        }
        UpdateErrorSummary(s);
    }
}
