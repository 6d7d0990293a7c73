using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Operand access shared by every instruction group of the interpreter.</summary>
public static unsafe partial class Interp
{
    public static bool Is64BitMode(CpuState* s) => (s->Mode & ExecMode.SizeMask) == ExecMode.Code64;



    public static ulong ReadReg(CpuState* s, Register r)
    {
        int idx = GprIndex(r, out int shift);
        ulong v = s->Gpr[idx] >> shift;
        return RegSize(r) switch { 1 => (byte)v, 2 => (ushort)v, 4 => (uint)v, _ => v };
    }

    /// <summary>Writes with x86 width rules: 32-bit writes zero-extend, 8- and 16-bit writes merge.</summary>
    public static void WriteReg(CpuState* s, Register r, ulong v)
    {
        int idx = GprIndex(r, out int shift);
        switch (RegSize(r))
        {
            case 1: s->Gpr[idx] = (s->Gpr[idx] & ~(0xFFUL << shift)) | ((v & 0xFF) << shift); break;
            case 2: s->Gpr[idx] = (s->Gpr[idx] & ~0xFFFFUL) | (v & 0xFFFF); break;
            case 4: s->Gpr[idx] = (uint)v; break;
            default: s->Gpr[idx] = v; break;
        }
    }


    /// <summary>Offset (effective address) of the memory operand, wrapped to the address size.</summary>
    public static ulong EffectiveOffset(CpuState* s, in Instruction i)
    {
        if (i.IsIPRelativeMemoryOperand) return i.IPRelativeMemoryAddress;
        ulong ea = i.MemoryDisplacement64;
        if (i.MemoryBase != Register.None) ea += ReadReg(s, i.MemoryBase);
        if (i.MemoryIndex != Register.None) ea += ReadReg(s, i.MemoryIndex) * (ulong)i.MemoryIndexScale;
        return AddressSize(i) switch { 2 => ea & 0xFFFF, 4 => ea & 0xFFFF_FFFF, _ => ea };
    }

    /// <summary>Linear address: offset plus segment base (only FS/GS bases apply in 64-bit mode).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Linear(CpuState* s, Register seg, ulong offset)
    {
        if ((s->Mode & ExecMode.SizeMask) == ExecMode.Code64)
            return seg switch { Register.FS => offset + s->Fs.Base, Register.GS => offset + s->Gs.Base, _ => offset };
        return (uint)(offset + s->Seg(SegOf(seg)).Base);
    }


    /// <summary>Linear address of the memory operand, read with the size its MemorySize names: see the
    /// overload with an explicit size and access kind.</summary>
    public static ulong MemAddress(CpuState* s, in Instruction i) => MemAddress(s, i, MemSize(i.MemorySize), write: false);

    /// <summary>Linear address of the memory operand, after the protected-mode limit and type checks of an
    /// access of <paramref name="size"/> bytes (a write if <paramref name="write"/>; a read-modify-write counts
    /// as a write, since every writable segment is readable).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong MemAddress(CpuState* s, in Instruction i, int size, bool write)
    {
        ulong offset = EffectiveOffset(s, i);
        if (SegmentChecks(s)) CheckSegmentAccess(s, i.MemorySegment, offset, size, write);
        return Linear(s, i.MemorySegment, offset);
    }

    /// <summary>Linear address of the memory operand without segment checks: for instructions that name an
    /// address without accessing it (INVLPG).</summary>
    public static ulong MemAddressUnchecked(CpuState* s, in Instruction i) => Linear(s, i.MemorySegment, EffectiveOffset(s, i));

    /// <summary><see cref="Linear"/> after the segment checks of an access of <paramref name="size"/> bytes at
    /// <paramref name="offset"/> (already wrapped to the address size).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CheckedLinear(CpuState* s, Register seg, ulong offset, int size, bool write)
    {
        if (SegmentChecks(s)) CheckSegmentAccess(s, seg, offset, size, write);
        return Linear(s, seg, offset);
    }

    /// <summary>Data accesses are limit- and type-checked in protected mode outside 64-bit mode (SDM Vol. 3A
    /// 5.3, 5.4; compatibility mode included). 64-bit mode has no limits, and real and virtual-8086 mode keep
    /// the 64 KiB wrap (unreal mode keeps whatever limit the cache holds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool SegmentChecks(CpuState* s) =>
        (s->Mode & ExecMode.SizeMask) != ExecMode.Code64 && (s->Cr0 & Cr0.PE) != 0 && (s->Rflags & RFlags.VM) == 0;

    /// <summary>The checks of SDM Vol. 3A 5.3 "Limit Checking" and 5.4 "Type Checking" for an access of
    /// <paramref name="size"/> bytes at <paramref name="offset"/> through <paramref name="seg"/>: a null data
    /// segment, a write to a read-only data or a code segment, or a read of an execute-only code segment is
    /// #GP(0); an offset outside the limit (expand-up: 0..Limit; expand-down: Limit+1..FFFFh, or FFFFFFFFh
    /// with B set) is #GP(0), or #SS(0) through SS. Every byte of the access must be inside.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void CheckSegmentAccess(CpuState* s, Register seg, ulong offset, int size, bool write)
    {
        int vector = SegmentAccessFault(s, seg, offset, size, write);
        if (vector >= 0) throw new CpuFault(vector);
    }

    /// <summary>The vector <see cref="CheckSegmentAccess"/> would raise (error code 0), or -1 if the access is allowed.</summary>
    public static int SegmentAccessFault(CpuState* s, Register seg, ulong offset, int size, bool write)
    {
        SegReg r = SegOf(seg);
        ref SegmentCache sc = ref s->Seg(r);
        uint a = sc.Attributes;
        bool stack = r == SegReg.Ss;
        if ((a & SegmentCache.Present) == 0)
        {
            // A null selector loads an unusable cache. SS can only be null after IA-32e transitions, which
            // are not modelled here: left unchecked.
            return stack ? -1 : Vector.GP;
        }
        bool code = (a & 8) != 0; // type bit 3; S is set in any cache a data access can use
        if (write ? code || (a & 2) == 0 : code && (a & 2) == 0) return Vector.GP; // W (data) / R (code)
        if (!WithinLimit(sc, offset, size)) return stack ? Vector.SS : Vector.GP;
        return -1;
    }

    /// <summary>Whether bytes <paramref name="offset"/>..offset+size-1 all lie inside the segment (SDM Vol. 3A
    /// 5.3): 0..Limit when expand-up; Limit+1..FFFFh (B clear) or FFFFFFFFh (B set) for an expand-down data
    /// segment (type bit 2 with bit 3 clear).</summary>
    public static bool WithinLimit(in SegmentCache sc, ulong offset, int size)
    {
        uint a = sc.Attributes;
        ulong last = offset + (ulong)(size > 0 ? size : 1) - 1;
        return (a & 0xC) == 0x4
            ? offset > sc.Limit && last <= ((a & SegmentCache.DefaultBig) != 0 ? 0xFFFF_FFFFUL : 0xFFFFUL)
            : last <= sc.Limit;
    }


    public static ulong ReadOp(CpuCore c, in Instruction i, int op, int size)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register: return ReadReg(c.State, i.GetOpRegister(op));
            case OpKind.Memory: return Mem.Read(c, MemAddress(c.State, i, size, write: false), size);
            default: return i.GetImmediate(op) & Flags.SizeMask(size);
        }
    }

    public static void WriteOp(CpuCore c, in Instruction i, int op, int size, ulong v)
    {
        if (i.GetOpKind(op) == OpKind.Register) WriteReg(c.State, i.GetOpRegister(op), v);
        else Mem.Write(c, MemAddress(c.State, i, size, write: true), size, v);
    }


    /// <summary>Stack-pointer width: 8 in 64-bit mode, else SS.B decides 4 or 2.</summary>
    public static int StackAddrSize(CpuState* s) =>
        (s->Mode & ExecMode.SizeMask) == ExecMode.Code64 ? 8 : (s->Ss.Attributes & SegmentCache.DefaultBig) != 0 ? 4 : 2;

    public static void Push(CpuCore c, int size, ulong v)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong rsp = s->Gpr[4] - (ulong)size;
        if (sa == 2) rsp &= 0xFFFF; else if (sa == 4) rsp &= 0xFFFF_FFFF;
        Mem.Write(c, CheckedLinear(s, Register.SS, rsp, size, write: true), size, v);
        SetStackPointer(s, sa, rsp);
    }

    public static ulong Pop(CpuCore c, int size)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong rsp = s->Gpr[4];
        if (sa == 2) rsp &= 0xFFFF; else if (sa == 4) rsp &= 0xFFFF_FFFF;
        ulong v = Mem.ReadStack(c, CheckedLinear(s, Register.SS, rsp, size, write: false), size);
        SetStackPointer(s, sa, rsp + (ulong)size);
        return v;
    }

    public static void SetStackPointer(CpuState* s, int sa, ulong rsp)
    {
        if (sa == 2) s->Gpr[4] = (s->Gpr[4] & ~0xFFFFUL) | (rsp & 0xFFFF);
        else if (sa == 4) s->Gpr[4] = (uint)rsp;
        else s->Gpr[4] = rsp;
    }

    /// <summary>Branch target wrapped to the operand size (a 16-bit JMP wraps IP at 64 KiB).</summary>
    /// <summary>A near branch's new RIP: wrapped to the operand size and, in 16/32-bit protected mode, checked
    /// against the CS limit (#GP(0) on the branch itself, SDM JMP/Jcc/CALL/RET "Protected Mode Exceptions").</summary>
    public static ulong NearBranch(CpuState* s, in Instruction i, ulong target)
    {
        ulong rip = BranchTarget(i, target);
        if (SegmentChecks(s) && rip > s->Cs.Limit) throw CpuFault.GP();
        return rip;
    }

}
