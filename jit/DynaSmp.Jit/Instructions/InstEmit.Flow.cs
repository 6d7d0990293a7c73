using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    static void Jcc(BlockEmitter e, in Instruction i)
    {
        var taken = e.Il.Label();
        e.EmitCondition((int)i.ConditionCode - 1);
        e.Il.Emit(OpCodes.Brtrue, taken);
        e.EmitDirectExit(e.NextIp);
        e.Il.Mark(taken);
        e.EmitDirectExit(i.NearBranchTarget);
    }

    static void Jmp(BlockEmitter e, in Instruction i)
    {
        if (i.Op0Kind is OpKind.NearBranch64 or OpKind.NearBranch32) { e.EmitDirectExit(i.NearBranchTarget); return; }
        if (i.Op0Kind == OpKind.Memory) e.ComputeLinear();
        ReadOperand(e, i, 0, e.StackWidth, e.T2);
        e.EmitIndirectExit(e.T2);
    }

    static void Call(BlockEmitter e, in Instruction i)
    {
        bool direct = i.Op0Kind is OpKind.NearBranch64 or OpKind.NearBranch32;
        int w = e.StackWidth;
        if (!direct)
        {
            if (i.Op0Kind == OpKind.Memory) e.ComputeLinear();
            ReadOperand(e, i, 0, w, e.T2); // target first: a fault reading it pushes nothing
        }
        e.Il.Const(e.NextIp); e.Il.Store(e.T1);
        e.StackLinear(-w);
        e.EmitWrite(w, e.T1);
        var rsp = e.GprLocal(4);
        e.Il.Load(e.Lin); e.Il.Store(rsp);
        if (direct) e.EmitDirectExit(i.NearBranchTarget);
        else e.EmitIndirectExit(e.T2);
    }

    // RET and RET imm16 (which releases imm16 more bytes of arguments).
    static void Ret(BlockEmitter e, in Instruction i)
    {
        int w = e.StackWidth;
        e.StackLinear(0);
        e.EmitRead(w);
        e.AdjustStack(w + (i.OpCount == 1 ? i.Immediate16 : 0));
        e.Il.Load(e.Val); e.Il.Store(e.T2);
        e.EmitIndirectExit(e.T2, isReturn: true);
    }

    static void Setcc(BlockEmitter e, in Instruction i)
    {
        if (HasMemory(i)) e.ComputeLinear();
        e.EmitCondition((int)i.ConditionCode - 1);
        e.Il.Emit(OpCodes.Conv_U8);
        e.Il.Store(e.T1);
        WriteOperand(e, i, 0, 1, e.T1);
    }

    static void Cmovcc(BlockEmitter e, in Instruction i)
    {
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, size, e.T1); // the source is read whatever the condition
        e.LoadReg(i.Op0Register); e.Il.Store(e.T2);
        var keep = e.Il.Label();
        e.EmitCondition((int)i.ConditionCode - 1);
        e.Il.Emit(OpCodes.Brfalse, keep);
        e.Il.Load(e.T1); e.Il.Store(e.T2);
        e.Il.Mark(keep);
        e.StoreReg(i.Op0Register, e.T2); // a 32-bit CMOV zero-extends even when the condition is false
    }
}
