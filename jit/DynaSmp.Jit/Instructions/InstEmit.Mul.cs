using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

static partial class InstEmit
{
    // IMUL r, r/m and IMUL r, r/m, imm: the truncated signed product; CF = OF = the product did not fit.
    // SF/ZF/PF follow the low result and AF is 0 (undefined in the SDM), as the interpreter does:
    // recorded as FlagOp.Shift with CF and OF computed.
    static void Imul(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        if (i.OpCount == 2)
        {
            e.LoadReg(i.Op0Register); il.Store(e.T1);
            ReadOperand(e, i, 1, size, e.T2);
        }
        else
        {
            ReadOperand(e, i, 1, size, e.T1);
            il.Const(i.GetImmediate(2)); il.Store(e.T2);
        }
        var lo = e.Val;
        var of = e.Lin; // the address is no longer needed: the source was read above
        if (size == 8)
        {
            il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Mul); il.Store(lo);
            if (e.FlagsLiveAfter) { il.Load(e.T1); il.Load(e.T2); il.Call(MImul64Overflows); il.Store(of); }
        }
        else
        {
            il.Load(e.T1); il.SignExtend(size); il.Load(e.T2); il.SignExtend(size); il.Emit(OpCodes.Mul); il.Store(of); // full product
            il.Load(of); il.Truncate(size); il.Store(lo);
            il.Load(lo); il.SignExtend(size); il.Load(of); il.Emit(OpCodes.Ceq); il.ConstI4(1); il.Emit(OpCodes.Xor); il.Emit(OpCodes.Conv_U8); il.Store(of);
        }
        e.StoreReg(i.Op0Register, lo);
        e.SetFlags(FlagOp.Shift, size, lo, of, of);
    }

    static readonly MethodInfo MImul64Overflows = typeof(InstEmit).GetMethod(nameof(Imul64Overflows), BindingFlags.Public | BindingFlags.Static)!;

    /// <summary>1 if the signed 128-bit product of a and b does not fit in 64 bits.</summary>
    public static ulong Imul64Overflows(ulong a, ulong b)
    {
        long hi = Math.BigMul((long)a, (long)b, out long lo);
        return hi != (lo >> 63) ? 1UL : 0UL;
    }
}
