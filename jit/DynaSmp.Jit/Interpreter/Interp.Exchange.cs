using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>CMPXCHG, XADD, CMPXCHG8B, CMPXCHG16B (SDM Vol. 2A pages of the same names). With LOCK and a
/// RAM operand they are one host atomic operation, so they are atomic across vCPU threads.</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteExchange(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Cmpxchg: Cmpxchg(c, i); return true;
            case Mnemonic.Xadd: Xadd(c, i); return true;
            case Mnemonic.Cmpxchg8b: Cmpxchg8b(c, i); return true;
            case Mnemonic.Cmpxchg16b: Cmpxchg16b(c, i); return true;
            default: return false;
        }
    }

    static void Cmpxchg(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong mask = Flags.SizeMask(size);
        Register acc = StringAccumulator(size);
        ulong a = ReadReg(s, acc);
        ulong src = ReadReg(s, i.Op1Register);
        ulong dest;
        if (i.Op0Kind == OpKind.Memory)
        {
            ulong lin = MemAddress(s, i, i.MemorySize.GetSize(), write: true);
            byte* p = i.HasLockPrefix ? Mem.HostPointer(c, lin, size, MemAccess.Write) : null;
            if (p != null) dest = Atomics.CompareExchange(p, size, src, a) & mask;
            else
            {
                // SDM: "the destination operand receives a write cycle without regard to the result of the comparison".
                dest = Mem.Read(c, lin, size);
                Mem.Write(c, lin, size, dest == a ? src : dest);
            }
        }
        else
        {
            if (i.HasLockPrefix) throw CpuFault.UD();
            dest = ReadReg(s, i.Op0Register);
            // A register destination is written only on success (a failing 32-bit CMPXCHG does not zero-extend it).
            if (dest == a) WriteReg(s, i.Op0Register, src);
        }
        // The accumulator is written only on failure (a successful 32-bit CMPXCHG leaves RAX[63:32] alone).
        if (dest != a) WriteReg(s, acc, dest);
        Flags.SetLazy(s, FlagOp.Sub, size, (a - dest) & mask, a, dest);
    }

    static void Xadd(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong mask = Flags.SizeMask(size);
        ulong src = ReadReg(s, i.Op1Register);
        ulong dest, sum;
        if (i.Op0Kind == OpKind.Memory)
        {
            ulong lin = MemAddress(s, i, i.MemorySize.GetSize(), write: true);
            byte* p = i.HasLockPrefix ? Mem.HostPointer(c, lin, size, MemAccess.Write) : null;
            if (p != null)
            {
                do
                {
                    dest = Atomics.Load(p, size);
                    sum = (dest + src) & mask;
                } while (Atomics.CompareExchange(p, size, sum, dest) != dest);
            }
            else
            {
                dest = Mem.Read(c, lin, size);
                sum = (dest + src) & mask;
                Mem.Write(c, lin, size, sum);
            }
            WriteReg(s, i.Op1Register, dest);
        }
        else
        {
            if (i.HasLockPrefix) throw CpuFault.UD();
            dest = ReadReg(s, i.Op0Register);
            sum = (dest + src) & mask;
            // SRC <- DEST then DEST <- TEMP: with the same register twice the sum wins.
            WriteReg(s, i.Op1Register, dest);
            WriteReg(s, i.Op0Register, sum);
        }
        Flags.SetLazy(s, FlagOp.Add, size, sum, dest, src);
    }

    /// <summary>CMPXCHG8B m64: EDX:EAX against the operand; ECX:EBX is stored on a match. Only ZF changes.</summary>
    static void Cmpxchg8b(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.UD();
        ulong expected = ((s->Gpr[2] & 0xFFFF_FFFF) << 32) | (s->Gpr[0] & 0xFFFF_FFFF);
        ulong desired = ((s->Gpr[1] & 0xFFFF_FFFF) << 32) | (s->Gpr[3] & 0xFFFF_FFFF);
        ulong lin = MemAddress(s, i, i.MemorySize.GetSize(), write: true);
        byte* p = i.HasLockPrefix ? Mem.HostPointer(c, lin, 8, MemAccess.Write) : null;
        ulong old;
        if (p != null) old = Atomics.CompareExchange(p, 8, desired, expected);
        else
        {
            old = Mem.Read(c, lin, 8);
            Mem.Write(c, lin, 8, old == expected ? desired : old);
        }
        if (old != expected)
        {
            s->Gpr[0] = old & 0xFFFF_FFFF; // 32-bit register writes: RAX/RDX upper halves are cleared
            s->Gpr[2] = old >> 32;
        }
        Flags.SetStatus(s, RFlags.ZF, old == expected ? RFlags.ZF : 0);
    }

    /// <summary>CMPXCHG16B m128 (64-bit mode, REX.W): RDX:RAX against the operand; RCX:RBX stored on a match.
    /// The operand must be 16-byte aligned or the instruction raises #GP(0).</summary>
    static void Cmpxchg16b(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.UD();
        ulong lin = MemAddress(s, i, i.MemorySize.GetSize(), write: true);
        if ((lin & 15) != 0) throw CpuFault.GP();
        ulong expLo = s->Gpr[0], expHi = s->Gpr[2];
        ulong newLo = s->Gpr[3], newHi = s->Gpr[1];
        ulong oldLo, oldHi;
        byte* p = i.HasLockPrefix ? Mem.HostPointer(c, lin, 16, MemAccess.Write) : null;
        if (p != null)
        {
            oldLo = expLo; oldHi = expHi;
            Cmpxchg16bHost.CompareExchange(p, ref oldLo, ref oldHi, newLo, newHi);
        }
        else
        {
            // Both halves are read and checked writable before either is written (aligned: one page).
            oldLo = Mem.Read(c, lin, 8);
            oldHi = Mem.Read(c, lin + 8, 8);
            bool eq = oldLo == expLo && oldHi == expHi;
            Mem.HostPointer(c, lin, 16, MemAccess.Write);
            Mem.Write(c, lin, 8, eq ? newLo : oldLo);
            Mem.Write(c, lin + 8, 8, eq ? newHi : oldHi);
        }
        bool equal = oldLo == expLo && oldHi == expHi;
        if (!equal) { s->Gpr[0] = oldLo; s->Gpr[2] = oldHi; }
        Flags.SetStatus(s, RFlags.ZF, equal ? RFlags.ZF : 0);
    }
}
