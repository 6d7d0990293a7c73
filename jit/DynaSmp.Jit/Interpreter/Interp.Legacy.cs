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
            case Code.Salc: // undocumented but valid outside 64-bit mode: AL = CF ? FFh : 00h, flags unchanged
                c.State->Gpr[0] = (c.State->Gpr[0] & ~0xFFUL) | ((Flags.Get(c.State) & RFlags.CF) != 0 ? 0xFFUL : 0);
                return true;
            case Code.Bound_r16_m1616: Bound(c, i, 2); return true;
            case Code.Bound_r32_m3232: Bound(c, i, 4); return true;
            case Code.Arpl_rm16_r16: case Code.Arpl_r32m16_r32: Arpl(c, i); return true;
            // Reserved-NOP and hint space (SDM: 0F 18-1F are NOPs/hints on processors without the named feature).
            case Code.Reservednop_rm16_r16_0F19: case Code.Reservednop_rm32_r32_0F19:
            case Code.Reservednop_rm16_r16_0F1A: case Code.Reservednop_rm32_r32_0F1A:
            case Code.Reservednop_rm16_r16_0F1B: case Code.Reservednop_rm32_r32_0F1B:
            case Code.Reservednop_rm16_r16_0F1C: case Code.Reservednop_rm32_r32_0F1C:
            case Code.Reservednop_rm16_r16_0F1D: case Code.Reservednop_rm32_r32_0F1D:
            case Code.Reservednop_rm16_r16_0F1E: case Code.Reservednop_rm32_r32_0F1E:
            case Code.Reservednop_rm16_r16_0F1F: case Code.Reservednop_rm32_r32_0F1F:
            case Code.Reservednop_rm64_r64_0F19: case Code.Reservednop_rm64_r64_0F1A: case Code.Reservednop_rm64_r64_0F1B:
            case Code.Reservednop_rm64_r64_0F1C: case Code.Reservednop_rm64_r64_0F1D: case Code.Reservednop_rm64_r64_0F1E:
            case Code.Reservednop_rm64_r64_0F1F:
            case Code.Cldemote_m8: case Code.Prefetchwt1_m8: case Code.Prefetchit0_m8: case Code.Prefetchit1_m8:
                return true;
        }
        return false;
    }

    /// <summary>BOUND: #BR (a fault) when the signed index lies outside [lower, upper] read from the memory operand.</summary>
    static void Bound(CpuCore c, in Instruction i, int size)
    {
        CpuState* s = c.State;
        ulong offset = EffectiveOffset(s, i);
        long lower = (long)SignExtend(Mem.Read(c, CheckedLinear(s, i.MemorySegment, offset, size, write: false), size), size);
        ulong upperOffset = (offset + (ulong)size) & (i.MemoryDisplSize == 2 || i.MemoryBase.IsGPR16() ? 0xFFFFUL : 0xFFFF_FFFFUL);
        long upper = (long)SignExtend(Mem.Read(c, CheckedLinear(s, i.MemorySegment, upperOffset, size, write: false), size), size);
        long index = (long)SignExtend(ReadReg(s, i.Op0Register), size);
        if (index < lower || index > upper) throw new CpuFault(Vector.BR);
    }

    /// <summary>ARPL: raises the destination selector's RPL to the source's (ZF = 1) or leaves it (ZF = 0). #UD in real
    /// and virtual-8086 mode (SDM); Iced decodes 63h as MOVSXD in 64-bit mode.</summary>
    static void Arpl(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if ((s->Cr0 & Cr0.PE) == 0 || (s->Rflags & RFlags.VM) != 0) throw CpuFault.UD();
        ulong dest = ReadOp(c, i, 0, 2);
        ulong src = ReadReg(s, i.Op1Register) & 0xFFFF;
        if ((dest & 3) < (src & 3))
        {
            WriteOp(c, i, 0, 2, (dest & ~3UL) | (src & 3));
            Flags.SetStatus(s, RFlags.ZF, RFlags.ZF);
        }
        else Flags.SetStatus(s, RFlags.ZF, 0);
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
