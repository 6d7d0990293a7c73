using DynaSmp.Jit.Translation;
using DynaSmp.Jit.Interpreter;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering, one file per instruction group. <see cref="CanEmit"/> is the table of what is
/// lowered inline (64-bit mode); everything else goes through the tier-0 helper from the same block.
/// </summary>
static partial class InstEmit
{
    public static bool CanEmit(in Instruction i)
    {
        if (i.HasLockPrefix || i.HasRepPrefix || i.HasRepnePrefix) return false;
        for (int op = 0; op < i.OpCount; op++)
        {
            switch (i.GetOpKind(op))
            {
                case OpKind.Register:
                    if (!i.GetOpRegister(op).IsGPR()) return false;
                    break;
                case OpKind.Memory:
                    if (i.MemoryBase != Register.None && !i.MemoryBase.IsGPR() && !i.IsIPRelativeMemoryOperand) return false;
                    if (i.MemoryIndex != Register.None && !i.MemoryIndex.IsGPR()) return false;
                    if (MnemonicClass.IsFarPointer(i.MemorySize)) return false;
                    break;
            }
        }
        switch (i.Mnemonic)
        {
            case Mnemonic.Mov: case Mnemonic.Movzx: case Mnemonic.Movsx: case Mnemonic.Movsxd: case Mnemonic.Lea:
            case Mnemonic.Add: case Mnemonic.Sub: case Mnemonic.And: case Mnemonic.Or: case Mnemonic.Xor:
            case Mnemonic.Cmp: case Mnemonic.Test: case Mnemonic.Inc: case Mnemonic.Dec: case Mnemonic.Neg: case Mnemonic.Not:
            case Mnemonic.Nop:
                return true;
            case Mnemonic.Push: case Mnemonic.Pop:
                return Math.Abs(i.StackPointerIncrement) == 8 && i.Op0Kind != OpKind.Memory;
            case Mnemonic.Jmp:
                return i.Op0Kind is OpKind.NearBranch64 || ((i.Op0Kind is OpKind.Register or OpKind.Memory) && OperandSize(i, 0) == 8);
            case Mnemonic.Call:
                return i.StackPointerIncrement == -8 && (i.Op0Kind is OpKind.NearBranch64 || ((i.Op0Kind is OpKind.Register or OpKind.Memory) && OperandSize(i, 0) == 8));
            case Mnemonic.Ret:
                return i.Code == Code.Retnq;
        }
        if (CanEmitShift(i) || CanEmitImul(i)) return true;
        if (i.IsJccShortOrNear) return true;
        if (MnemonicClass.IsSetcc(i.Mnemonic) && i.ConditionCode != ConditionCode.None) return true;
        if (MnemonicClass.IsCmovcc(i.Mnemonic)) return true;
        return false;
    }

    /// <summary>True when the instruction writes its first operand (CMP/TEST/Jcc do not).</summary>
    public static bool WritesOp0(in Instruction i) => i.Mnemonic switch
    {
        Mnemonic.Cmp or Mnemonic.Test or Mnemonic.Push or Mnemonic.Jmp or Mnemonic.Call or Mnemonic.Nop => false,
        _ => !i.IsJccShortOrNear,
    };

    public static int OperandSize(in Instruction i, int op) => Interpreter.Interp.OpSize(i, op);

    /// <summary>Lowers one instruction. Returns true when it ended the block (it emitted the exits).</summary>
    public static bool Emit(BlockEmitter e, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Nop: return false;
            case Mnemonic.Mov: Mov(e, i); return false;
            case Mnemonic.Movzx: Movzx(e, i); return false;
            case Mnemonic.Movsx: case Mnemonic.Movsxd: Movsx(e, i); return false;
            case Mnemonic.Lea: Lea(e, i); return false;
            case Mnemonic.Push: Push(e, i); return false;
            case Mnemonic.Pop: Pop(e, i); return false;
            case Mnemonic.Add: case Mnemonic.Sub: case Mnemonic.And: case Mnemonic.Or: case Mnemonic.Xor:
            case Mnemonic.Cmp: case Mnemonic.Test:
                Alu(e, i); return false;
            case Mnemonic.Inc: case Mnemonic.Dec: case Mnemonic.Neg: case Mnemonic.Not: Unary(e, i); return false;
            case Mnemonic.Jmp: Jmp(e, i); return true;
            case Mnemonic.Call: Call(e, i); return true;
            case Mnemonic.Ret: Ret(e, i); return true;
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar: Shift(e, i); return false;
            case Mnemonic.Imul: Imul(e, i); return false;
        }
        if (i.IsJccShortOrNear) { Jcc(e, i); return true; }
        if (MnemonicClass.IsCmovcc(i.Mnemonic)) { Cmovcc(e, i); return false; }
        Setcc(e, i);
        return false;
    }
}
