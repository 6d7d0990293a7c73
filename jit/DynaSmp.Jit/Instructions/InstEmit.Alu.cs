using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    // ADD/SUB/AND/OR/XOR/CMP/TEST: result to the destination (not for CMP/TEST); flags recorded lazily.
    static void Alu(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        // XOR r, r and SUB r, r: the result is 0 whatever the register held.
        bool zeroIdiom = i.Op0Kind == OpKind.Register && i.Op1Kind == OpKind.Register && i.Op0Register == i.Op1Register
            && i.Mnemonic is Mnemonic.Xor or Mnemonic.Sub;
        if (zeroIdiom)
        {
            il.Const(0); il.Store(e.T1); il.Const(0); il.Store(e.T2);
        }
        else
        {
            ReadOperand(e, i, 0, size, e.T1);
            ReadOperand(e, i, 1, size, e.T2);
        }
        var res = e.Val;
        il.Load(e.T1); il.Load(e.T2); BinaryOp(il, i.Mnemonic); il.Truncate(size); il.Store(res);
        if (i.Mnemonic is not (Mnemonic.Cmp or Mnemonic.Test)) WriteOperand(e, i, 0, size, res);
        var op = i.Mnemonic switch { Mnemonic.Add => FlagOp.Add, Mnemonic.Sub or Mnemonic.Cmp => FlagOp.Sub, _ => FlagOp.Logic };
        e.SetFlags(op, size, res, e.T1, e.T2);
    }

    // INC/DEC/NEG/NOT on a register or memory.
    static void Unary(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        switch (i.Mnemonic)
        {
            case Mnemonic.Inc: il.Load(e.T1); il.Const(1); il.Emit(OpCodes.Add); break;
            case Mnemonic.Dec: il.Load(e.T1); il.Const(1); il.Emit(OpCodes.Sub); break;
            case Mnemonic.Neg: il.Const(0); il.Load(e.T1); il.Emit(OpCodes.Sub); break;
            default: il.Load(e.T1); il.Emit(OpCodes.Not); break;
        }
        il.Truncate(size);
        il.Store(e.T2);
        WriteOperand(e, i, 0, size, e.T2);
        switch (i.Mnemonic)
        {
            case Mnemonic.Inc: e.SetIncDecFlags(FlagOp.Inc, size, e.T2, e.T1); break;
            case Mnemonic.Dec: e.SetIncDecFlags(FlagOp.Dec, size, e.T2, e.T1); break;
            case Mnemonic.Neg:
                il.Const(0); il.Store(e.Val);
                e.SetFlags(FlagOp.Sub, size, e.T2, e.Val, e.T1);
                break;
        }
    }
}
