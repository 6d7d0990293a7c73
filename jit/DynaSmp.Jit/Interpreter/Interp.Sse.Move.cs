using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE/SSE2 data movement: MOVD/MOVQ, full-register moves, scalar and half moves, non-temporal
/// stores, LDMXCSR/STMXCSR.</summary>
public static unsafe partial class Interp
{
    static bool TrySseMove(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Movdqa: case Mnemonic.Movaps: case Mnemonic.Movapd:
            case Mnemonic.Movntdq: case Mnemonic.Movntps: case Mnemonic.Movntpd:
                MovFull(c, i, aligned: true); return true;
            case Mnemonic.Movdqu: case Mnemonic.Movups: case Mnemonic.Movupd:
                MovFull(c, i, aligned: false); return true;
            case Mnemonic.Movd: case Mnemonic.Movq: MovdMovq(c, i); return true;
            case Mnemonic.Movss: MovScalar(c, i, 4); return true;
            case Mnemonic.Movsd: MovScalar(c, i, 8); return true;
            case Mnemonic.Movlps: case Mnemonic.Movlpd: MovHalf(c, i, high: false); return true;
            case Mnemonic.Movhps: case Mnemonic.Movhpd: MovHalf(c, i, high: true); return true;
            case Mnemonic.Movhlps: case Mnemonic.Movlhps:
            {
                CpuState* s = c.State;
                SseEnter(s, i);
                int d = XmmSlot(i.Op0Register), r = XmmSlot(i.Op1Register);
                // MOVHLPS: dest[63:0] = src[127:64]; MOVLHPS: dest[127:64] = src[63:0]; the other half stays.
                if (i.Mnemonic == Mnemonic.Movhlps) s->Xmm[d] = s->Xmm[r + 1];
                else s->Xmm[d + 1] = s->Xmm[r];
                return true;
            }
            case Mnemonic.Movnti:
            {
                // A general-register store: no SSE enable checks (SDM MOVNTI: only #UD for LOCK).
                if (i.HasLockPrefix) throw CpuFault.UD();
                int size = i.Op1Register.GetSize();
                Mem.Write(c, MemAddress(c.State, i, size, write: true), size, ReadReg(c.State, i.Op1Register));
                return true;
            }
            case Mnemonic.Ldmxcsr:
            {
                CpuState* s = c.State;
                SseEnter(s, i);
                uint v = Mem.Read32(c, MemAddress(s, i));
                if ((v & ~MxcsrMask) != 0) throw CpuFault.GP(); // SDM LDMXCSR: reserved bits set -> #GP(0)
                s->Mxcsr = v;
                return true;
            }
            case Mnemonic.Stmxcsr:
            {
                CpuState* s = c.State;
                SseEnter(s, i);
                Mem.Write32(c, MemAddress(s, i, 4, write: true), s->Mxcsr);
                return true;
            }
            default: return false;
        }
    }

    /// <summary>MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD/MOVNT*: 128-bit copy.</summary>
    static void MovFull(CpuCore c, in Instruction i, bool aligned)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        if (i.Op0Kind == OpKind.Register) SetXmm(s, i.Op0Register, ReadXmmM128(c, i, 1, aligned));
        else Write128(c, Address128(s, i, aligned, write: true), GetXmm(s, i.Op1Register));
    }

    /// <summary>MOVD/MOVQ: loads into an XMM register zero the bits above the operand (SDM MOVD/MOVQ).</summary>
    static void MovdMovq(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        if (IsXmmOp(i, 0))
        {
            ulong v;
            if (IsXmmOp(i, 1)) v = s->Xmm[XmmSlot(i.Op1Register)]; // MOVQ xmm, xmm
            else if (i.Op1Kind == OpKind.Register) v = ReadReg(s, i.Op1Register);
            else v = Mem.Read(c, MemAddress(s, i), i.MemorySize.GetSize());
            int d = XmmSlot(i.Op0Register);
            s->Xmm[d] = v;
            s->Xmm[d + 1] = 0;
            return;
        }
        ulong lo = s->Xmm[XmmSlot(i.Op1Register)];
        if (i.Op0Kind == OpKind.Register) WriteReg(s, i.Op0Register, lo);
        else Mem.Write(c, MemAddress(s, i, i.MemorySize.GetSize(), write: true), i.MemorySize.GetSize(), lo);
    }

    /// <summary>MOVSS/MOVSD: register to register merges the low element; a load zeroes the rest of the
    /// destination; a store writes only the low element (SDM MOVSS/MOVSD).</summary>
    static void MovScalar(CpuCore c, in Instruction i, int size)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        ulong mask = size == 4 ? 0xFFFF_FFFFUL : ulong.MaxValue;
        if (i.Op0Kind == OpKind.Memory)
        {
            Mem.Write(c, MemAddress(s, i, size, write: true), size, s->Xmm[XmmSlot(i.Op1Register)] & mask);
            return;
        }
        int d = XmmSlot(i.Op0Register);
        if (i.Op1Kind == OpKind.Register)
        {
            ulong v = s->Xmm[XmmSlot(i.Op1Register)];
            s->Xmm[d] = (s->Xmm[d] & ~mask) | (v & mask);
            return;
        }
        ulong m = Mem.Read(c, MemAddress(s, i), size);
        s->Xmm[d] = m;
        s->Xmm[d + 1] = 0;
    }

    /// <summary>MOVLPS/MOVLPD/MOVHPS/MOVHPD: move one qword between memory and one half of a register,
    /// leaving the other half unchanged.</summary>
    static void MovHalf(CpuCore c, in Instruction i, bool high)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        int h = high ? 1 : 0;
        if (i.Op0Kind == OpKind.Register) s->Xmm[XmmSlot(i.Op0Register) + h] = Mem.Read64(c, MemAddress(s, i));
        else Mem.Write64(c, MemAddress(s, i, 8, write: true), s->Xmm[XmmSlot(i.Op1Register) + h]);
    }
}
