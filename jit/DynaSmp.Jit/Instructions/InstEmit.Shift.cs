using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    // SDM "SAL/SAR/SHL/SHR": CF = last bit shifted out; OF (defined for count 1) = MSB(result) XOR CF for
    // left shifts, MSB(original) for SHR, 0 for SAR. AF is undefined: 0 here, as the interpreter does.
    static void Shift(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0), bits = size * 8;
        int count = MaskedImmediateCount(i);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        var res = e.T2;
        il.Const((ulong)count); il.Store(e.T3);
        EmitShiftRotateValue(e, i.Mnemonic, size, e.T1, e.T3);
        il.Store(res);
        WriteOperand(e, i, 0, size, res);
        if (!e.FlagsLiveAfter) { e.SetFlags(FlagOp.Shift, size, res, res, res); return; }
        // CF into Val, OF into Lin (both free now: the store above is done).
        var cf = e.Val;
        var of = e.Lin;
        switch (i.Mnemonic)
        {
            case Mnemonic.Shr:
                il.Load(e.T1); il.ConstI4(count - 1); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And); il.Store(cf);
                il.Load(e.T1); il.ConstI4(bits - 1); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And); il.Store(of);
                break;
            case Mnemonic.Sar:
                il.Load(e.T1); il.SignExtend(size); il.ConstI4(count - 1); il.Emit(OpCodes.Shr); il.Const(1); il.Emit(OpCodes.And); il.Store(cf);
                il.Const(0); il.Store(of);
                break;
            default:
                if (count <= bits) { il.Load(e.T1); il.ConstI4(bits - count); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And); }
                else il.Const(0); // 8/16-bit operands shifted past their width: the last bit out is 0
                il.Store(cf);
                il.Load(res); il.ConstI4(bits - 1); il.Emit(OpCodes.Shr_Un); il.Load(cf); il.Emit(OpCodes.Xor); il.Const(1); il.Emit(OpCodes.And); il.Store(of);
                break;
        }
        e.SetFlags(FlagOp.Shift, size, res, cf, of);
    }
}
