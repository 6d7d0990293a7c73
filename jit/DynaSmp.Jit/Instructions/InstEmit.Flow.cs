using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
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
        ulong target = X86Operands.BranchTarget(i, i.NearBranchTarget);
        e.CheckBranchTarget(target);
        e.EmitDirectExit(target);
    }

    static void Jmp(BlockEmitter e, in Instruction i)
    {
        if (i.Op0Kind is OpKind.NearBranch64 or OpKind.NearBranch32 or OpKind.NearBranch16)
        {
            ulong target = X86Operands.BranchTarget(i, i.NearBranchTarget);
            e.CheckBranchTarget(target);
            e.EmitDirectExit(target);
            return;
        }
        if (i.Op0Kind == OpKind.Memory) e.ComputeLinear();
        ReadOperand(e, i, 0, OperandSize(i, 0), e.T2);
        e.CheckBranchTarget(e.T2);
        e.EmitIndirectExit(e.T2);
    }

    /// <summary>LOOP/LOOPE/LOOPNE decrement the counter (CX, ECX or RCX by the address size) without touching the flags
    /// and branch while it is not zero (and ZF is set / clear); JCXZ/JECXZ/JRCXZ branch when it is zero.</summary>
    static void LoopOrJcxz(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var counter = i.Mnemonic switch
        {
            Mnemonic.Jcxz => Register.CX, Mnemonic.Jecxz => Register.ECX, Mnemonic.Jrcxz => Register.RCX,
            _ => Interp.LoopCounterSize(i.Code) switch { 2 => Register.CX, 4 => Register.ECX, _ => Register.RCX },
        };
        var taken = il.Label();
        if (i.Mnemonic is Mnemonic.Jcxz or Mnemonic.Jecxz or Mnemonic.Jrcxz)
        {
            e.LoadReg(counter);
            il.Emit(OpCodes.Brfalse, taken);
        }
        else
        {
            if (i.Mnemonic != Mnemonic.Loop) { e.EmitCondition(i.Mnemonic == Mnemonic.Loope ? 4 : 5); il.Emit(OpCodes.Conv_U8); il.Store(e.T2); }
            e.LoadReg(counter); il.Const(1); il.Emit(OpCodes.Sub); il.Truncate(counter.GetSize()); il.Store(e.T1);
            il.Load(e.T1); il.Const(0); il.Emit(OpCodes.Cgt_Un);
            if (i.Mnemonic != Mnemonic.Loop) { il.Load(e.T2); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.And); }
            il.Emit(OpCodes.Conv_U8); il.Store(e.T3);
            // A taken LOOP whose target is outside CS faults with the counter unchanged (tier 0's order).
            var inside = il.Label();
            il.Load(e.T3); il.Emit(OpCodes.Brfalse, inside);
            e.CheckBranchTarget(X86Operands.BranchTarget(i, i.NearBranchTarget));
            il.Mark(inside);
            e.StoreReg(counter, e.T1);
            il.Load(e.T3); il.Emit(OpCodes.Brtrue, taken);
        }
        e.EmitDirectExit(e.NextIp);
        il.Mark(taken);
        ulong target = X86Operands.BranchTarget(i, i.NearBranchTarget);
        if (i.Mnemonic is Mnemonic.Jcxz or Mnemonic.Jecxz or Mnemonic.Jrcxz) e.CheckBranchTarget(target);
        e.EmitDirectExit(target);
    }

    /// <summary>Bytes a near CALL pushes or a near RET pops: 2 with a 16-bit operand size, else the code size's.</summary>
    internal static int ReturnAddressSize(in Instruction i) => i.Mnemonic == Mnemonic.Ret
        ? i.Code switch { Code.Retnw or Code.Retnw_imm16 => 2, Code.Retnd or Code.Retnd_imm16 => 4, _ => 8 }
        : -i.StackPointerIncrement;

    /// <summary>CALL/RET lowered: the pushed or popped size fits the stack (2 bytes with a 66h prefix, or the stack width),
    /// and an indirect CALL's operand has that size.</summary>
    static bool NearCallOrReturnLowerable(in Instruction i, int stackWidth)
    {
        int w = ReturnAddressSize(i);
        if (!StackOperandLowerable(w, stackWidth)) return false;
        return i.Mnemonic == Mnemonic.Ret || i.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64
            || ((i.Op0Kind is OpKind.Register or OpKind.Memory) && OperandSize(i, 0) == w);
    }

    // CALL rel/r/m: a 16-bit CALL pushes IP (the low half of the return address) and its target is already 16-bit.
    static void Call(BlockEmitter e, in Instruction i)
    {
        bool direct = i.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch64 or OpKind.NearBranch32;
        int w = ReturnAddressSize(i);
        if (!direct)
        {
            if (i.Op0Kind == OpKind.Memory) e.ComputeLinear();
            ReadOperand(e, i, 0, w, e.T2); // target first: a fault reading it pushes nothing
            e.CheckBranchTarget(e.T2);
        }
        else e.CheckBranchTarget(X86Operands.BranchTarget(i, i.NearBranchTarget)); // before the push, as tier 0
        e.Il.Const(e.NextIp & Flags.SizeMask(w)); e.Il.Store(e.T1);
        e.StackLinear(-w);
        e.EmitWrite(w, e.T1);
        e.SetStackPointer(e.Off);
        e.PushReturnPrediction(e.NextIp & Flags.SizeMask(w));
        if (direct) e.EmitDirectExit(X86Operands.BranchTarget(i, i.NearBranchTarget));
        else e.EmitIndirectExit(e.T2);
    }

    // RET and RET imm16 (which releases imm16 more bytes of arguments).
    static void Ret(BlockEmitter e, in Instruction i)
    {
        int w = ReturnAddressSize(i);
        e.StackLinear(0);
        e.EmitRead(w);
        e.Il.Load(e.Val); e.Il.Store(e.T2);
        e.CheckBranchTarget(e.T2); // outside CS: #GP(0) with nothing popped
        e.AdjustStack(w + (i.OpCount == 1 ? i.Immediate16 : 0));
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
