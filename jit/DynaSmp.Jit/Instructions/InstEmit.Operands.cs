using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    /// <summary>Reads operand <paramref name="op"/> (zero-extended to 64 bits) into <paramref name="dst"/>.
    /// A memory operand's linear address must already be in e.Lin.</summary>
    static void ReadOperand(BlockEmitter e, in Instruction i, int op, int size, Local64 dst)
    {
        switch (i.GetOpKind(op))
        {
            case OpKind.Register:
                e.LoadReg(i.GetOpRegister(op));
                e.Il.Store(dst);
                break;
            case OpKind.Memory:
                e.EmitRead(size);
                e.Il.Load(e.Val); e.Il.Store(dst);
                break;
            default:
                e.Il.Const(i.GetImmediate(op) & Flags.SizeMask(size));
                e.Il.Store(dst);
                break;
        }
    }

    static void WriteOperand(BlockEmitter e, in Instruction i, int op, int size, Local64 v)
    {
        if (i.GetOpKind(op) == OpKind.Register) e.StoreReg(i.GetOpRegister(op), v);
        else e.EmitWrite(size, v);
    }

    /// <summary>A memory operand that is only an address: LEA, the multi-byte NOP and the prefetch hints never access it.</summary>
    internal static bool NeverAccessesMemory(in Instruction i) =>
        i.Mnemonic is Mnemonic.Lea or Mnemonic.Nop or Mnemonic.Prefetchnta or Mnemonic.Prefetcht0 or Mnemonic.Prefetcht1
            or Mnemonic.Prefetcht2 or Mnemonic.Prefetchw;

    internal static bool HasMemory(in Instruction i)
    {
        for (int op = 0; op < i.OpCount; op++) if (i.GetOpKind(op) == OpKind.Memory) return true;
        return false;
    }

    /// <summary>A shift or rotate's immediate count after the architectural mask (6 bits for 64-bit operands, else 5).</summary>
    internal static int MaskedImmediateCount(in Instruction i) => i.Immediate8 & (OperandSize(i, 0) == 8 ? 63 : 31);

    static void BinaryOp(Il il, Mnemonic m)
    {
        il.Emit(m switch
        {
            Mnemonic.Add => OpCodes.Add,
            Mnemonic.Sub or Mnemonic.Cmp => OpCodes.Sub,
            Mnemonic.And or Mnemonic.Test => OpCodes.And,
            Mnemonic.Or => OpCodes.Or,
            _ => OpCodes.Xor,
        });
    }
}
