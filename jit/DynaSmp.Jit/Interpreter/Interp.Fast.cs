using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>What tier 0 needs of one instruction of the forms it runs without <see cref="Interp.Execute"/>: register slots,
/// size and immediate resolved once per block instead of through Iced's operand accessors on every run.</summary>
public readonly struct FastInsn
{
    internal readonly FastKind Kind;
    /// <summary>GPR slots, and the bit shift of each (8 for AH..BH).</summary>
    internal readonly byte Dst, Src, DstShift, SrcShift;
    /// <summary>Operand size in bytes, and the source's for MOVZX/MOVSX/MOVSXD.</summary>
    internal readonly byte Size, SrcSize;
    internal readonly Mnemonic Mnemonic;
    /// <summary>The immediate (masked to <see cref="Size"/>), or for Jcc the condition index.</summary>
    internal readonly ulong Imm;
    /// <summary>SSE forms: the <see cref="Fpu.SseFastPath"/> helper to try first (a function pointer).</summary>
    internal readonly nint Helper;

    internal FastInsn(FastKind kind, Mnemonic m, int dst, int src, int size, ulong imm, int dstShift = 0, int srcShift = 0, int srcSize = 0,
        nint helper = 0)
    {
        Kind = kind; Mnemonic = m; Dst = (byte)dst; Src = (byte)src; Size = (byte)size; Imm = imm;
        DstShift = (byte)dstShift; SrcShift = (byte)srcShift; SrcSize = (byte)srcSize; Helper = helper;
    }
}

internal enum FastKind : byte
{
    None,
    MovRR, MovRI, MovRM, MovMR, MovMI,
    AluRR, AluRI, AluRM,
    // CMP/TEST of any size: they write no register, so partial registers and memory first operands are plain reads.
    CmpRR, CmpRI, CmpRM, CmpMR, CmpMI,
    ExtendR, ExtendM, Lea, Nop,
    Push, Pop, CallRel, Ret,
    Jcc, Jmp,
    UnaryR, SetccR, SetccM,
    // Forms whose tier-0 routine is called straight, past Execute's dispatch and its chain of groups.
    Shift, Imul,
    // SSE arithmetic, compares and conversions with an XMM destination: tier 1's host-arithmetic fast path first.
    SseXmm,
}

public static unsafe partial class Interp
{
    /// <summary>The fast forms of <paramref name="insns"/>, one per instruction (<see cref="FastKind.None"/> where
    /// <see cref="Execute"/> must run it).</summary>
    /// <remarks>PERF: a 64-bit quicksort interpreted spent 9% of its time in Iced's GetOpKind, 10% in ReadReg and 5% in
    /// WriteReg, most of it for register and immediate operands the block decoded once. Only forms whose effect is plain
    /// qualify: register results only into 32- and 64-bit GPRs (narrower ones merge), no LOCK or REP, near relative
    /// branches, pushes and pops of the stack's own width. Memory operands, stack accesses and branch targets go through
    /// the helpers Execute uses (<see cref="MemAddress(CpuState*, in Instruction, int, bool)"/>, <see cref="Push"/>,
    /// <see cref="Pop"/>, <see cref="NearBranch"/>, <see cref="Ret"/>), so faults and limits are the same. The forms are
    /// the ones a Debian boot interpreted most (DYNASMP_PROFILE_FALLBACKS' "general dispatch" lines). Shifts, rotates and
    /// IMUL call their own tier-0 routine directly, for the same semantics without the dispatch.</remarks>
    public static FastInsn[] FastForms(Instruction[] insns)
    {
        var forms = new FastInsn[insns.Length];
        for (int k = 0; k < insns.Length; k++) forms[k] = Classify(insns[k]);
        return forms;
    }

    static FastInsn Classify(in Instruction i)
    {
        if (i.HasLockPrefix || i.HasRepPrefix || i.HasRepnePrefix) return default;
        var m = i.Mnemonic;
        if (i.IsJccShortOrNear) return new(FastKind.Jcc, m, 0, 0, 0, (ulong)((int)i.ConditionCode - 1));
        if (Fpu.SseFastPath.XmmHelper(i) != null) return SseForm(i);
        if (MnemonicClass.IsSetcc(m)) return SetccForm(i);
        switch (m)
        {
            case Mnemonic.Jmp:
                return i.IsJmpShortOrNear ? new(FastKind.Jmp, m, 0, 0, 0, 0) : default;
            case Mnemonic.Mov:
                return StoreForm(i, FastKind.MovMR, FastKind.MovMI) is { Kind: not FastKind.None } store ? store
                    : TwoOperand(i, FastKind.MovRR, FastKind.MovRI, FastKind.MovRM);
            case Mnemonic.Cmp: case Mnemonic.Test:
                return CompareForm(i);
            case Mnemonic.Add: case Mnemonic.Or: case Mnemonic.And: case Mnemonic.Sub: case Mnemonic.Xor:
                return TwoOperand(i, FastKind.AluRR, FastKind.AluRI, FastKind.AluRM);
            case Mnemonic.Movzx: case Mnemonic.Movsx: case Mnemonic.Movsxd:
                return ExtendForm(i);
            case Mnemonic.Lea:
                return i.OpCount == 2 && i.Op0Kind == OpKind.Register && IsFullGpr(i.Op0Register) && i.Op1Kind == OpKind.Memory
                    ? new(FastKind.Lea, m, GprIndex(i.Op0Register, out _), 0, RegSize(i.Op0Register), 0) : default;
            case Mnemonic.Nop:
                return new(FastKind.Nop, m, 0, 0, 0, 0);
            case Mnemonic.Push:
                return OneFullGpr(i, out int pushed, out int width) && width == -i.StackPointerIncrement
                    ? new(FastKind.Push, m, 0, pushed, width, 0) : default;
            case Mnemonic.Pop:
                return OneFullGpr(i, out int popped, out width) && width == i.StackPointerIncrement
                    ? new(FastKind.Pop, m, popped, 0, width, 0) : default;
            case Mnemonic.Call:
                return i.IsCallNear ? new(FastKind.CallRel, m, 0, 0, -i.StackPointerIncrement, 0) : default;
            case Mnemonic.Ret:
                return i.Code is Code.Retnq or Code.Retnd or Code.Retnw ? new(FastKind.Ret, m, 0, 0, 0, 0) : default;
            case Mnemonic.Inc: case Mnemonic.Dec: case Mnemonic.Neg: case Mnemonic.Not:
                return OneFullGpr(i, out int operand, out int size) ? new(FastKind.UnaryR, m, operand, 0, size, 0) : default;
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
                return new(FastKind.Shift, m, 0, 0, 0, 0);
            case Mnemonic.Imul:
                return i.OpCount >= 2 ? new(FastKind.Imul, m, 0, 0, 0, 0) : default;
            default:
                return default;
        }
    }

    /// <summary><see cref="Fpu.SseFastPath"/>'s XMM-destination helpers by mnemonic (0: none).</summary>
    static readonly nint[] SseHelpers = BuildSseHelpers();

    static nint[] BuildSseHelpers()
    {
        var table = new nint[Enum.GetValues<Mnemonic>().Length];
        foreach (var (m, helper) in Fpu.SseFastPath.XmmHelpers) table[(int)m] = helper.MethodHandle.GetFunctionPointer();
        return table;
    }

    /// <summary>An SSE instruction of the helper's shape: XMM destination slot in Dst, source memory bytes in Size (0 for a
    /// register), the helper's immediate argument in Imm (the source size for CVTSI2SD/SS, as tier 1 passes).</summary>
    static FastInsn SseForm(in Instruction i)
    {
        var m = i.Mnemonic;
        if (i.OpCount < 2 || i.Op0Kind != OpKind.Register || !i.Op0Register.IsXMM()) return default;
        int memBytes = i.Op1Kind == OpKind.Memory ? i.MemorySize.GetSize() : 0;
        if (i.Op1Kind is not (OpKind.Register or OpKind.Memory) || memBytes is not (0 or 4 or 8 or 16)) return default;
        int imm = m is Mnemonic.Cvtsi2sd or Mnemonic.Cvtsi2ss ? X86Operands.OpSize(i, 1) : i.OpCount > 2 ? i.Immediate8 : 0;
        return new(FastKind.SseXmm, m, XmmSlot(i.Op0Register), 0, memBytes, (ulong)imm, helper: SseHelpers[(int)m]);
    }

    /// <summary>The instruction's only operand is a 32- or 64-bit GPR: its slot and size.</summary>
    static bool OneFullGpr(in Instruction i, out int slot, out int size)
    {
        slot = size = 0;
        if (i.OpCount != 1 || i.Op0Kind != OpKind.Register || !IsFullGpr(i.Op0Register)) return false;
        slot = GprIndex(i.Op0Register, out _);
        size = RegSize(i.Op0Register);
        return true;
    }

    /// <summary>SETcc into an 8-bit GPR (AH..BH included) or a byte of memory; the condition index in Imm.</summary>
    static FastInsn SetccForm(in Instruction i)
    {
        ulong cc = (ulong)((int)i.ConditionCode - 1);
        if (i.OpCount != 1) return default;
        if (i.Op0Kind == OpKind.Register && Gpr(i.Op0Register, out int slot, out int shift, out int size) && size == 1)
            return new(FastKind.SetccR, i.Mnemonic, slot, 0, 1, cc, dstShift: shift);
        return i.Op0Kind == OpKind.Memory ? new(FastKind.SetccM, i.Mnemonic, 0, 0, 1, cc) : default;
    }

    /// <summary>A GPR of any size as slot, shift and size (AH..BH are bits 8-15 of their slot).</summary>
    static bool Gpr(Register r, out int slot, out int shift, out int size)
    {
        size = RegSize(r);
        slot = GprIndex(r, out shift);
        return r.IsGPR();
    }

    static bool IsImmediate(OpKind k) => k is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32 or OpKind.Immediate64
        or OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32to64;

    /// <summary>MOV to memory from a GPR of any size or from an immediate (a store has no partial-register merge).</summary>
    static FastInsn StoreForm(in Instruction i, FastKind fromReg, FastKind fromImm)
    {
        if (i.OpCount != 2 || i.Op0Kind != OpKind.Memory) return default;
        int size = MemSize(i.MemorySize);
        if (size is not (1 or 2 or 4 or 8)) return default;
        if (i.Op1Kind == OpKind.Register && Gpr(i.Op1Register, out int src, out int shift, out int rsize) && rsize == size)
            return new(fromReg, i.Mnemonic, 0, src, size, 0, srcShift: shift);
        if (IsImmediate(i.Op1Kind)) return new(fromImm, i.Mnemonic, 0, 0, size, i.GetImmediate(1) & Flags.SizeMask(size));
        return default;
    }

    /// <summary>CMP/TEST of any size with register, immediate or memory operands (no write, so no merge).</summary>
    static FastInsn CompareForm(in Instruction i)
    {
        if (i.OpCount != 2) return default;
        var m = i.Mnemonic;
        if (i.Op0Kind == OpKind.Register && Gpr(i.Op0Register, out int dst, out int dshift, out int size))
        {
            if (i.Op1Kind == OpKind.Register && Gpr(i.Op1Register, out int src, out int sshift, out int ssize) && ssize == size)
                return new(FastKind.CmpRR, m, dst, src, size, 0, dshift, sshift);
            if (IsImmediate(i.Op1Kind)) return new(FastKind.CmpRI, m, dst, 0, size, i.GetImmediate(1) & Flags.SizeMask(size), dshift);
            if (i.Op1Kind == OpKind.Memory && MemSize(i.MemorySize) == size) return new(FastKind.CmpRM, m, dst, 0, size, 0, dshift);
            return default;
        }
        if (i.Op0Kind != OpKind.Memory) return default;
        int msize = MemSize(i.MemorySize);
        if (msize is not (1 or 2 or 4 or 8)) return default;
        if (i.Op1Kind == OpKind.Register && Gpr(i.Op1Register, out int r, out int rshift, out int rsize) && rsize == msize)
            return new(FastKind.CmpMR, m, 0, r, msize, 0, srcShift: rshift);
        if (IsImmediate(i.Op1Kind)) return new(FastKind.CmpMI, m, 0, 0, msize, i.GetImmediate(1) & Flags.SizeMask(msize));
        return default;
    }

    /// <summary>MOVZX/MOVSX/MOVSXD into a 32- or 64-bit GPR from a GPR of any size or memory.</summary>
    static FastInsn ExtendForm(in Instruction i)
    {
        if (i.OpCount != 2 || i.Op0Kind != OpKind.Register || !IsFullGpr(i.Op0Register)) return default;
        int dst = GprIndex(i.Op0Register, out _), size = RegSize(i.Op0Register);
        if (i.Op1Kind == OpKind.Register && Gpr(i.Op1Register, out int src, out int shift, out int ssize))
            return new(FastKind.ExtendR, i.Mnemonic, dst, src, size, 0, srcShift: shift, srcSize: ssize);
        if (i.Op1Kind == OpKind.Memory && MemSize(i.MemorySize) is 1 or 2 or 4)
            return new(FastKind.ExtendM, i.Mnemonic, dst, 0, size, 0, srcSize: MemSize(i.MemorySize));
        return default;
    }

    static bool IsFullGpr(Register r) => r.IsGPR32() || r.IsGPR64();

    static FastInsn TwoOperand(in Instruction i, FastKind rr, FastKind ri, FastKind rm)
    {
        if (i.OpCount != 2) return default;
        var m = i.Mnemonic;
        if (i.Op0Kind == OpKind.Register && IsFullGpr(i.Op0Register))
        {
            int size = RegSize(i.Op0Register), dst = GprIndex(i.Op0Register, out _);
            switch (i.Op1Kind)
            {
                case OpKind.Register when IsFullGpr(i.Op1Register) && RegSize(i.Op1Register) == size:
                    return new(rr, m, dst, GprIndex(i.Op1Register, out _), size, 0);
                case OpKind.Immediate8to32 or OpKind.Immediate8to64 or OpKind.Immediate32 or OpKind.Immediate32to64 or OpKind.Immediate64:
                    return new(ri, m, dst, 0, size, i.GetImmediate(1) & Flags.SizeMask(size));
                case OpKind.Memory when MemSize(i.MemorySize) == size:
                    return new(rm, m, dst, 0, size, 0);
            }
        }
        return default;
    }

    /// <summary>Runs a fast form (<see cref="FastForms"/>) exactly as <see cref="Execute"/> would run <paramref name="i"/>:
    /// same results, lazy flag record, faults (memory, branch limits) and order of accesses. RIP is already past it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ExecuteFast(CpuCore c, CpuState* s, in FastInsn f, in Instruction i)
    {
        int size = f.Size;
        ulong mask = Flags.SizeMask(size);
        switch (f.Kind)
        {
            case FastKind.MovRR: s->Gpr[f.Dst] = s->Gpr[f.Src] & mask; return;
            case FastKind.MovRI: s->Gpr[f.Dst] = f.Imm; return;
            case FastKind.MovRM: s->Gpr[f.Dst] = Mem.Read(c, MemAddress(s, i, size, write: false), size); return;
            case FastKind.MovMR: Mem.Write(c, MemAddress(s, i, size, write: true), size, (s->Gpr[f.Src] >> f.SrcShift) & mask); return;
            case FastKind.MovMI: Mem.Write(c, MemAddress(s, i, size, write: true), size, f.Imm); return;
            case FastKind.Jcc: if (Flags.Condition(s, (int)f.Imm)) s->Rip = NearBranch(s, i, i.NearBranchTarget); return;
            case FastKind.Jmp: s->Rip = NearBranch(s, i, i.NearBranchTarget); return;
            case FastKind.Nop: return;
            case FastKind.Lea: s->Gpr[f.Dst] = EffectiveOffset(s, i) & mask; return;
            case FastKind.Push: Push(c, size, s->Gpr[f.Src] & mask); return;
            case FastKind.Pop: s->Gpr[f.Dst] = Pop(c, size) & mask; return; // POP RSP: the popped value wins
            case FastKind.CallRel:
            {
                ulong rip = NearBranch(s, i, i.NearBranchTarget); // checked before the push, as Call
                Push(c, size, s->Rip);
                s->Rip = rip;
                return;
            }
            case FastKind.Ret: Ret(c, i); return;
            case FastKind.Shift: ShiftRotate(c, i); return;
            case FastKind.Imul: ImulTruncating(c, i); return;
            case FastKind.SseXmm:
            {
                // The same checks and source read as the general path; a case the helper declines (rounding mode,
                // special operands, flags not yet sticky) runs there, reading its source again as tier 1's fallback does.
                SseEnter(s, i);
                SseSource(c, i, 1, size, out ulong lo, out ulong hi); // size: the memory operand's bytes (unused for a register)
                if (((delegate*<CpuState*, int, ulong, ulong, int, int>)f.Helper)(s, f.Dst, lo, hi, (int)f.Imm) == 0) Execute(c, i);
                return;
            }
            case FastKind.SetccR:
            {
                ulong v = Flags.Condition(s, (int)f.Imm) ? 1UL : 0UL;
                s->Gpr[f.Dst] = (s->Gpr[f.Dst] & ~(0xFFUL << f.DstShift)) | (v << f.DstShift);
                return;
            }
            case FastKind.SetccM: Mem.Write(c, MemAddress(s, i, 1, write: true), 1, Flags.Condition(s, (int)f.Imm) ? 1UL : 0UL); return;
            case FastKind.UnaryR:
            {
                ulong ua = s->Gpr[f.Dst] & mask, ures = UnaryCompute(f.Mnemonic, ua) & mask;
                s->Gpr[f.Dst] = ures;
                // After the write, as Unary: INC/DEC keep the carry of the record before theirs.
                if (f.Mnemonic == Mnemonic.Inc) Flags.SetLazyIncDec(s, FlagOp.Inc, size, ures, ua);
                else if (f.Mnemonic == Mnemonic.Dec) Flags.SetLazyIncDec(s, FlagOp.Dec, size, ures, ua);
                else if (f.Mnemonic == Mnemonic.Neg) Flags.SetLazy(s, FlagOp.Sub, size, ures, 0, ua);
                return;
            }
            case FastKind.ExtendR or FastKind.ExtendM:
            {
                int ss = f.SrcSize;
                ulong v = f.Kind == FastKind.ExtendR ? (s->Gpr[f.Src] >> f.SrcShift) & Flags.SizeMask(ss)
                    : Mem.Read(c, MemAddress(s, i, ss, write: false), ss);
                if (f.Mnemonic != Mnemonic.Movzx) v = SignExtend(v, ss);
                s->Gpr[f.Dst] = v & mask;
                return;
            }
        }
        // ALU and CMP/TEST: the source first (a memory source may fault before anything changes), as Alu does.
        ulong b = f.Kind switch
        {
            FastKind.AluRR or FastKind.CmpRR or FastKind.CmpMR => (s->Gpr[f.Src] >> f.SrcShift) & mask,
            FastKind.AluRI or FastKind.CmpRI or FastKind.CmpMI => f.Imm,
            _ => Mem.Read(c, MemAddress(s, i, size, write: false), size),
        };
        ulong a = f.Kind is FastKind.CmpMR or FastKind.CmpMI ? Mem.Read(c, MemAddress(s, i, size, write: false), size)
            : (s->Gpr[f.Dst] >> f.DstShift) & mask;
        ulong res = AluCompute(f.Mnemonic, a, b, 0, out var op) & mask;
        if (f.Kind is FastKind.AluRR or FastKind.AluRI or FastKind.AluRM) s->Gpr[f.Dst] = res; // into a 32/64-bit GPR: zero-extends
        Flags.SetLazy(s, op, size, res, a, b);
    }
}
