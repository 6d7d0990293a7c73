using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    // SAL/SAR/SHL/SHR by a non-zero immediate: the flags wait as a deferred record (SetFlagsShiftImmediate).
    static void Shift(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        int count = MaskedImmediateCount(i);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        var res = e.T2;
        il.Const((ulong)count); il.Store(e.T3);
        EmitShiftRotateValue(e, i.Mnemonic, size, e.T1, e.T3);
        il.Store(res);
        WriteOperand(e, i, 0, size, res);
        e.SetFlagsShiftImmediate(i.Mnemonic, count, size, res, e.T1);
    }
}
