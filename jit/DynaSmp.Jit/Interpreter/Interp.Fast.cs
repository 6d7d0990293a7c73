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
    internal readonly byte Dst, Src, Size;
    internal readonly Mnemonic Mnemonic;
    /// <summary>The immediate (masked to <see cref="Size"/>), or for Jcc the condition index.</summary>
    internal readonly ulong Imm;

    internal FastInsn(FastKind kind, Mnemonic m, int dst, int src, int size, ulong imm)
    {
        Kind = kind; Mnemonic = m; Dst = (byte)dst; Src = (byte)src; Size = (byte)size; Imm = imm;
    }
}

internal enum FastKind : byte { None, MovRR, MovRI, MovRM, MovMR, AluRR, AluRI, AluRM, Jcc, Jmp }

public static unsafe partial class Interp
{
    /// <summary>The fast forms of <paramref name="insns"/>, one per instruction (<see cref="FastKind.None"/> where
    /// <see cref="Execute"/> must run it).</summary>
    /// <remarks>PERF: a 64-bit quicksort interpreted spent 9% of its time in Iced's GetOpKind, 10% in ReadReg and 5% in
    /// WriteReg, most of it for register and immediate operands the block decoded once. Only forms that cannot do
    /// anything but their plain effect qualify: 32- and 64-bit GPRs, no LOCK, near relative branches; memory operands go
    /// through <see cref="MemAddress(CpuState*, in Instruction, int, bool)"/> and <see cref="Mem"/> as in Execute.</remarks>
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
        switch (m)
        {
            case Mnemonic.Jo: case Mnemonic.Jno: case Mnemonic.Jb: case Mnemonic.Jae: case Mnemonic.Je:
            case Mnemonic.Jne: case Mnemonic.Jbe: case Mnemonic.Ja: case Mnemonic.Js: case Mnemonic.Jns:
            case Mnemonic.Jp: case Mnemonic.Jnp: case Mnemonic.Jl: case Mnemonic.Jge: case Mnemonic.Jle: case Mnemonic.Jg:
                return IsNearBranch(i) ? new(FastKind.Jcc, m, 0, 0, 0, (ulong)((int)i.ConditionCode - 1)) : default;
            case Mnemonic.Jmp:
                return IsNearBranch(i) ? new(FastKind.Jmp, m, 0, 0, 0, 0) : default;
            case Mnemonic.Mov:
                return TwoOperand(i, FastKind.MovRR, FastKind.MovRI, FastKind.MovRM, FastKind.MovMR);
            case Mnemonic.Add: case Mnemonic.Or: case Mnemonic.And: case Mnemonic.Sub:
            case Mnemonic.Xor: case Mnemonic.Cmp: case Mnemonic.Test:
                return TwoOperand(i, FastKind.AluRR, FastKind.AluRI, FastKind.AluRM, FastKind.None);
            default:
                return default;
        }
    }

    static bool IsNearBranch(in Instruction i) =>
        i.OpCount == 1 && i.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64;

    static bool IsFullGpr(Register r) => r.IsGPR32() || r.IsGPR64();

    static FastInsn TwoOperand(in Instruction i, FastKind rr, FastKind ri, FastKind rm, FastKind mr)
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
                case OpKind.Memory when MemSize(i.MemorySize) == size && rm != FastKind.None:
                    return new(rm, m, dst, 0, size, 0);
            }
            return default;
        }
        if (mr != FastKind.None && i.Op0Kind == OpKind.Memory && i.Op1Kind == OpKind.Register && IsFullGpr(i.Op1Register)
            && MemSize(i.MemorySize) == RegSize(i.Op1Register))
            return new(mr, m, 0, GprIndex(i.Op1Register, out _), RegSize(i.Op1Register), 0);
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
            case FastKind.MovMR: Mem.Write(c, MemAddress(s, i, size, write: true), size, s->Gpr[f.Src] & mask); return;
            case FastKind.Jcc: if (Flags.Condition(s, (int)f.Imm)) s->Rip = NearBranch(s, i, i.NearBranchTarget); return;
            case FastKind.Jmp: s->Rip = NearBranch(s, i, i.NearBranchTarget); return;
        }
        // ALU: the source first (a memory source may fault before anything changes), as Alu does.
        ulong b = f.Kind switch
        {
            FastKind.AluRR => s->Gpr[f.Src] & mask,
            FastKind.AluRI => f.Imm,
            _ => Mem.Read(c, MemAddress(s, i, size, write: false), size),
        };
        ulong a = s->Gpr[f.Dst] & mask;
        ulong res = AluCompute(f.Mnemonic, a, b, 0, out var op) & mask;
        if (f.Mnemonic is not (Mnemonic.Cmp or Mnemonic.Test)) s->Gpr[f.Dst] = res; // 32-bit results zero-extend
        Flags.SetLazy(s, op, size, res, a, b);
    }
}
