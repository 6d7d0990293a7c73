using System.Reflection.Emit;
using DynaSmp.Jit.Translation;
using DynaSmp.Jit.X86;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    static void Mov(BlockEmitter e, in Instruction i)
    {
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        if (i.Op1Kind == OpKind.Register && i.Op1Register.IsSegmentRegister())
        {
            // MOV r/m, Sreg: the selector, zero-extended into a 32/64-bit register, 16 bits to a 16-bit one or memory.
            e.Il.StateAddress(StateOffsets.SegmentSelector(X86Operands.SegOf(i.Op1Register)));
            e.Il.Emit(OpCodes.Ldind_U2); e.Il.Emit(OpCodes.Conv_U8); e.Il.Store(e.T1);
        }
        else ReadOperand(e, i, 1, size, e.T1);
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

    // PUSH r/m/imm of 2 bytes (66h) or the stack width: the operand is read and the store done before RSP changes, so a
    // fault leaves RSP untouched; PUSH RSP and [RSP]-based operands see RSP as it was (SDM PUSH).
    static void Push(BlockEmitter e, in Instruction i)
    {
        int size = -i.StackPointerIncrement;
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        e.StackLinear(-size);
        e.EmitWrite(size, e.T1);
        e.SetStackPointer(e.Off);
    }

    // POP r/m of 2 bytes (66h) or the stack width; a 16-bit POP SP merges into the incremented RSP, as tier 0 does.
    static void Pop(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = i.StackPointerIncrement;
        e.StackLinear(0);
        e.EmitRead(size);
        if (i.Op0Kind == OpKind.Register)
        {
            e.AdjustStack(size);
            e.StoreReg(i.Op0Register, e.Val); // POP RSP: the popped value wins (SDM POP)
            return;
        }
        // POP m: an [RSP]-based address uses the incremented RSP (SDM POP), but a faulting store must leave RSP as it was.
        var rsp = e.GprLocal(4);
        il.Load(e.Val); il.Store(e.T1);
        il.Load(rsp); il.Store(e.T2);
        e.AdjustStack(size);
        il.Load(rsp); il.Store(e.T3);
        e.ComputeLinear();
        il.Load(e.T2); il.Store(rsp);
        e.EmitWrite(size, e.T1);
        il.Load(e.T3); il.Store(rsp);
    }

    /// <summary>PUSH/POP of a general register, memory or (PUSH) an immediate, moving 2 bytes or the stack width (and 4
    /// bytes, 66h, in 16-bit code).</summary>
    static bool PushPopLowerable(in Instruction i, int stackWidth) => StackOperandLowerable(Math.Abs(i.StackPointerIncrement), stackWidth);

    /// <summary>A stack operand of <paramref name="size"/> bytes: 2, the stack width, or 4 in 16-bit code.</summary>
    static bool StackOperandLowerable(int size, int stackWidth) => size == stackWidth || size == 2 || (stackWidth == 2 && size == 4);
}
