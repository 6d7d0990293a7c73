using System.Reflection.Emit;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    static void Mov(BlockEmitter e, in Instruction i)
    {
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, size, e.T1);
        WriteOperand(e, i, 0, size, e.T1);
    }

    static void Movzx(BlockEmitter e, in Instruction i)
    {
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, OperandSize(i, 1), e.T1);
        e.StoreReg(i.Op0Register, e.T1);
    }

    static void Movsx(BlockEmitter e, in Instruction i)
    {
        int ss = OperandSize(i, 1);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, ss, e.T1);
        e.Il.Load(e.T1); e.Il.SignExtend(ss); e.Il.Store(e.T1);
        e.StoreReg(i.Op0Register, e.T1);
    }

    static void Lea(BlockEmitter e, in Instruction i)
    {
        e.ComputeEffective(); // the offset: LEA adds no segment base
        e.StoreReg(i.Op0Register, e.Lin);
    }

    // PUSH r/imm of the stack width: the store comes first so a fault leaves RSP untouched.
    static void Push(BlockEmitter e, in Instruction i)
    {
        int w = e.StackWidth;
        ReadOperand(e, i, 0, w, e.T1);
        e.StackLinear(-w);
        e.EmitWrite(w, e.T1);
        var rsp = e.GprLocal(4);
        e.Il.Load(e.Lin); e.Il.Store(rsp);
    }

    static void Pop(BlockEmitter e, in Instruction i)
    {
        int w = e.StackWidth;
        e.StackLinear(0);
        e.EmitRead(w);
        e.AdjustStack(w);
        e.StoreReg(i.Op0Register, e.Val); // POP RSP: the popped value wins (SDM POP)
    }
}
