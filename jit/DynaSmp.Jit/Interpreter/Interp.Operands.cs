using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Operand access shared by every instruction group of the interpreter.</summary>
public static unsafe partial class Interp
{
    public static bool Is64BitMode(CpuState* s) => (s->Mode & ExecMode.SizeMask) == ExecMode.Code64;

    /// <summary>48-bit canonical form: bits 63..47 all equal (SDM 3.3.7.1).</summary>
    public static bool IsCanonical(ulong a) => (ulong)((long)(a << 16) >> 16) == a;

    /// <summary>GPR slot and bit shift of an Iced general register (AH..BH live in bits 8-15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int GprIndex(Register r, out int shift)
    {
        if (r >= Register.AH && r <= Register.BH) { shift = 8; return r - Register.AH; }
        shift = 0;
        return r.GetFullRegister() - Register.RAX;
    }

    public static ulong ReadReg(CpuState* s, Register r)
    {
        int idx = GprIndex(r, out int shift);
        ulong v = s->Gpr[idx] >> shift;
        return r.GetSize() switch { 1 => (byte)v, 2 => (ushort)v, 4 => (uint)v, _ => v };
    }

    /// <summary>Writes with x86 width rules: 32-bit writes zero-extend, 8- and 16-bit writes merge.</summary>
    public static void WriteReg(CpuState* s, Register r, ulong v)
    {
        int idx = GprIndex(r, out int shift);
        switch (r.GetSize())
        {
            case 1: s->Gpr[idx] = (s->Gpr[idx] & ~(0xFFUL << shift)) | ((v & 0xFF) << shift); break;
            case 2: s->Gpr[idx] = (s->Gpr[idx] & ~0xFFFFUL) | (v & 0xFFFF); break;
            case 4: s->Gpr[idx] = (uint)v; break;
            default: s->Gpr[idx] = v; break;
        }
    }

    /// <summary>Address size in bytes of an instruction's memory operand (from its base/index registers).</summary>
    public static int AddressSize(in Instruction i)
    {
        if (i.MemoryBase != Register.None)
            return i.MemoryBase is Register.RIP ? 8 : i.MemoryBase is Register.EIP ? 4 : i.MemoryBase.GetSize();
        if (i.MemoryIndex != Register.None) return i.MemoryIndex.GetSize();
        return i.MemoryDisplSize is 2 or 4 or 8 ? i.MemoryDisplSize : 8;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SegReg SegOf(Register seg) => seg switch
    {
        Register.ES => SegReg.Es, Register.CS => SegReg.Cs, Register.SS => SegReg.Ss,
        Register.FS => SegReg.Fs, Register.GS => SegReg.Gs, _ => SegReg.Ds,
    };

    public static ulong MemAddress(CpuState* s, in Instruction i) => Linear(s, i.MemorySegment, EffectiveOffset(s, i));

    /// <summary>Operand size in bytes of operand <paramref name="op"/>.</summary>
    public static int OpSize(in Instruction i, int op)
    {
        var k = i.GetOpKind(op);
        if (k == OpKind.Register) return i.GetOpRegister(op).GetSize();
        if (k == OpKind.Memory) return i.MemorySize.GetSize();
        return k switch
        {
            OpKind.Immediate8 => 1, OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
            OpKind.Immediate32 or OpKind.Immediate8to32 => 4, _ => 8,
        };
    }

    public static ulong ReadOp(CpuCore c, in Instruction i, int op, int size)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register: return ReadReg(c.State, i.GetOpRegister(op));
            case OpKind.Memory: return Mem.Read(c, MemAddress(c.State, i), size);
            default: return i.GetImmediate(op) & Flags.SizeMask(size);
        }
    }

    public static void WriteOp(CpuCore c, in Instruction i, int op, int size, ulong v)
    {
        if (i.GetOpKind(op) == OpKind.Register) WriteReg(c.State, i.GetOpRegister(op), v);
        else Mem.Write(c, MemAddress(c.State, i), size, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong v, int size) => size switch
    {
        1 => (ulong)(long)(sbyte)v, 2 => (ulong)(long)(short)v, 4 => (ulong)(long)(int)v, _ => v,
    };

    /// <summary>Stack-pointer width: 8 in 64-bit mode, else SS.B decides 4 or 2.</summary>
    public static int StackAddrSize(CpuState* s) =>
        (s->Mode & ExecMode.SizeMask) == ExecMode.Code64 ? 8 : (s->Ss.Attributes & SegmentCache.DefaultBig) != 0 ? 4 : 2;

    public static void Push(CpuCore c, int size, ulong v)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong rsp = s->Gpr[4] - (ulong)size;
        if (sa == 2) rsp &= 0xFFFF; else if (sa == 4) rsp &= 0xFFFF_FFFF;
        Mem.Write(c, Linear(s, Register.SS, rsp), size, v);
        SetStackPointer(s, sa, rsp);
    }

    public static ulong Pop(CpuCore c, int size)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong rsp = s->Gpr[4];
        if (sa == 2) rsp &= 0xFFFF; else if (sa == 4) rsp &= 0xFFFF_FFFF;
        ulong v = Mem.Read(c, Linear(s, Register.SS, rsp), size);
        SetStackPointer(s, sa, rsp + (ulong)size);
        return v;
    }

    /// <summary>Reads the value a POP would return without moving the stack pointer.</summary>
    public static ulong PeekStack(CpuCore c, int size, int offset = 0)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong rsp = s->Gpr[4] + (ulong)offset;
        if (sa == 2) rsp &= 0xFFFF; else if (sa == 4) rsp &= 0xFFFF_FFFF;
        return Mem.Read(c, Linear(s, Register.SS, rsp), size);
    }

    public static void SetStackPointer(CpuState* s, int sa, ulong rsp)
    {
        if (sa == 2) s->Gpr[4] = (s->Gpr[4] & ~0xFFFFUL) | (rsp & 0xFFFF);
        else if (sa == 4) s->Gpr[4] = (uint)rsp;
        else s->Gpr[4] = rsp;
    }

    /// <summary>Branch target wrapped to the operand size (a 16-bit JMP wraps IP at 64 KiB).</summary>
    public static ulong BranchTarget(in Instruction i, ulong target) => i.CodeSize == CodeSize.Code64
        ? target
        : OperandSizeOfBranch(i) == 2 ? target & 0xFFFF : target & 0xFFFF_FFFF;

    static int OperandSizeOfBranch(in Instruction i)
    {
        int inc = i.StackPointerIncrement;
        if (inc != 0) return Math.Abs(inc);
        return i.Op0Kind switch
        {
            OpKind.NearBranch16 => 2,
            OpKind.NearBranch32 => 4,
            OpKind.Register => i.Op0Register.GetSize(),
            OpKind.Memory => i.MemorySize.GetSize(),
            _ => 8,
        };
    }
}
