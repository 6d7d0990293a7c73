using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1: operand checks, special cases, stack handling
/// and condition codes per the SDM instruction pages; the values come from <see cref="X87Math"/>.</summary>
public static unsafe partial class Interp
{
    static void X87Transcendental(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        var m = i.Mnemonic;
        bool twoOperands = m is Mnemonic.Fpatan or Mnemonic.Fyl2x or Mnemonic.Fyl2xp1;
        bool pushes = m is Mnemonic.Fsincos or Mnemonic.Fptan;
        // FSIN..FPTAN: C2 is set only for an out-of-range argument; the others leave it (undefined in the SDM).
        if (!twoOperands && m != Mnemonic.F2xm1) s->FpuStatus &= unchecked((ushort)~FswC2);
        if (X87Empty(s, 0) || (twoOperands && X87Empty(s, 1)))
        {
            if (!X87StackFault(s, overflow: false)) return;
            if (twoOperands) { X87Set(s, 1, Ext80.Indefinite); X87Pop(s); }
            else
            {
                X87Set(s, 0, Ext80.Indefinite);
                if (pushes) X87Push(s, Ext80.Indefinite); // pushed even onto a full register (observed)
            }
            return;
        }
        if (pushes && !X87Empty(s, 7))
        {
            if (X87StackFault(s, overflow: true)) { X87Set(s, 0, Ext80.Indefinite); X87Push(s, Ext80.Indefinite); }
            return;
        }
        var e = FpEnv.FromControl(s->FpuControl);
        var x = X87Get(s, 0);
        switch (m)
        {
            case Mnemonic.Fsin: case Mnemonic.Fcos: case Mnemonic.Fsincos: case Mnemonic.Fptan:
            {
                // |x| >= 2^63: out of range, C2 = 1 and ST(0) unchanged (SDM FSIN/FCOS/FSINCOS/FPTAN).
                if (!x.IsNaN && !x.IsUnsupported && !x.IsInf && x.Exp >= Ext80.Bias + 63)
                {
                    s->FpuStatus = (ushort)((s->FpuStatus & ~(FswC1 | FswC2)) | FswC2);
                    return;
                }
                X87Math.Trig(ref e, m, x, out var r0, out var r1);
                if (!X87Commit(s, e)) return;
                s->FpuStatus &= unchecked((ushort)~FswC2);
                if (m is Mnemonic.Fsin or Mnemonic.Fcos) X87Set(s, 0, r0);
                else
                {
                    X87Set(s, 0, r0);
                    X87Push(s, r1);
                }
                return;
            }
            case Mnemonic.F2xm1:
            {
                var r = X87Math.TwoXm1(ref e, x);
                if (X87Commit(s, e)) X87Set(s, 0, r);
                return;
            }
            default:
            {
                var y = X87Get(s, 1);
                var r = m switch
                {
                    Mnemonic.Fpatan => X87Math.Atan2(ref e, y, x),
                    Mnemonic.Fyl2x => X87Math.Yl2x(ref e, y, x, plusOne: false),
                    _ => X87Math.Yl2x(ref e, y, x, plusOne: true),
                };
                if (!X87Commit(s, e)) return;
                X87Set(s, 1, r);
                X87Pop(s);
                return;
            }
        }
    }
}
