using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Legacy integer instructions valid outside 64-bit mode that no other group covers: PUSHA/PUSHAD and
/// POPA/POPAD (0x60/0x61; Iced decodes them as invalid in 64-bit mode, where the SDM says #UD).</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteLegacy(CpuCore c, in Instruction i)
    {
        switch (i.Code)
        {
            case Code.Pushaw: PushAll(c, 2); return true;
            case Code.Pushad: PushAll(c, 4); return true;
            case Code.Popaw: PopAll(c, 2); return true;
            case Code.Popad: PopAll(c, 4); return true;
        }
        return false;
    }

    // Order pushed: AX, CX, DX, BX, the original SP, BP, SI, DI (GPR indexes 0..7 in order).
    // Every store happens before (E)SP changes, so a #SS/#PF/#GP part-way leaves (E)SP as it was (fault semantics).
    static void PushAll(CpuCore c, int size)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong mask = sa == 2 ? 0xFFFFUL : sa == 4 ? 0xFFFF_FFFFUL : ulong.MaxValue;
        ulong sp = s->Gpr[4];
        ulong valueMask = size == 2 ? 0xFFFFUL : 0xFFFF_FFFFUL;
        for (int r = 0; r < 8; r++)
        {
            ulong addr = (sp - (ulong)(size * (r + 1))) & mask;
            Mem.Write(c, CheckedLinear(s, Register.SS, addr, size, write: true), size, s->Gpr[r] & valueMask);
        }
        SetStackPointer(s, sa, (sp - (ulong)(size * 8)) & mask);
    }

    // Popped: DI, SI, BP, (SP skipped), BX, DX, CX, AX. All loads first, then the registers, so a fault changes nothing.
    static void PopAll(CpuCore c, int size)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong mask = sa == 2 ? 0xFFFFUL : sa == 4 ? 0xFFFF_FFFFUL : ulong.MaxValue;
        ulong sp = s->Gpr[4] & mask;
        ulong* v = stackalloc ulong[8];
        for (int k = 0; k < 8; k++)
        {
            int r = 7 - k;
            ulong addr = (sp + (ulong)(size * k)) & mask;
            v[r] = Mem.Read(c, CheckedLinear(s, Register.SS, addr, size, write: false), size);
        }
        for (int r = 0; r < 8; r++)
        {
            if (r == 4) continue;
            s->Gpr[r] = size == 2 ? (s->Gpr[r] & ~0xFFFFUL) | (v[r] & 0xFFFF) : (uint)v[r];
        }
        SetStackPointer(s, sa, (sp + (ulong)(size * 8)) & mask);
    }
}
