using System.Numerics;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>Tier-1 lowering of BT/BTS/BTR/BTC (SDM Vol. 2A "BT"): register and memory operands, immediate and register
/// bit offsets (a register offset into memory selects the operand-sized unit at EA + size * (offset DIV width), below
/// or above the operand), LOCK forms through <see cref="BlockEmitter.EmitAtomic"/>. Only CF changes.</summary>
static partial class InstEmit
{
    /// <summary>A register offset into memory moves the address; lowered where the wrap of the moved address is the
    /// linear wrap tier 1 already applies: 64-bit addressing in 64-bit mode, 32-bit addressing in flat 32-bit code.</summary>
    static bool BitTestLowerable(in Instruction i, int stackWidth) =>
        i.Op0Kind != OpKind.Memory || i.Op1Kind != OpKind.Register || Interpreter.Interp.AddressSize(i) == stackWidth;

    static void BitTest(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        int bits = size * 8;
        var m = i.Mnemonic;
        bool writes = m != Mnemonic.Bt;
        if (i.Op0Kind == OpKind.Register)
        {
            e.LoadReg(i.Op0Register); il.Store(e.T1);
            LoadBitOffset(e, i); il.Const((ulong)(bits - 1)); il.Emit(OpCodes.And); il.Store(e.T2);
            if (writes) { EmitBitApply(e, m, size); il.Store(e.Val); e.StoreReg(i.Op0Register, e.Val); }
            EmitBitCarry(e);
            return;
        }
        e.ComputeLinear();
        if (i.Op1Kind == OpKind.Register)
        {
            e.LoadReg(i.Op1Register); il.SignExtend(size); il.Store(e.T2);
            il.Load(e.Lin); il.Load(e.T2); il.ConstI4(BitOperations.Log2((uint)bits)); il.Emit(OpCodes.Shr);
            il.Const((ulong)size); il.Emit(OpCodes.Mul); il.Emit(OpCodes.Add);
            if (e.StackWidth == 4) il.Truncate(4);
            il.Store(e.Lin);
            il.Load(e.T2); il.Const((ulong)(bits - 1)); il.Emit(OpCodes.And); il.Store(e.T2);
        }
        else { il.Const(i.GetImmediate(1) & (ulong)(bits - 1)); il.Store(e.T2); }
        if (i.HasLockPrefix)
        {
            e.EmitAtomic(size, host =>
            {
                EmitUpdateLoop(e, host, size, () => EmitBitApply(e, m, size));
                EmitBitCarry(e);
            });
            return;
        }
        e.EmitRead(size);
        il.Load(e.Val); il.Store(e.T1);
        if (writes) { EmitBitApply(e, m, size); il.Store(e.Val); e.EmitWrite(size, e.Val); }
        EmitBitCarry(e);
    }

    static void LoadBitOffset(BlockEmitter e, in Instruction i)
    {
        if (i.Op1Kind == OpKind.Register) e.LoadReg(i.Op1Register);
        else e.Il.Const(i.GetImmediate(1));
    }

    /// <summary>Pushes T1 with bit T2 set, cleared or flipped.</summary>
    static void EmitBitApply(BlockEmitter e, Mnemonic m, int size)
    {
        var il = e.Il;
        il.Load(e.T1);
        il.Const(1); il.Load(e.T2); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shl);
        switch (m)
        {
            case Mnemonic.Bts: il.Emit(OpCodes.Or); break;
            case Mnemonic.Btr: il.Emit(OpCodes.Not); il.Emit(OpCodes.And); break;
            default: il.Emit(OpCodes.Xor); break;
        }
        il.Truncate(size);
    }

    /// <summary>CF = bit T2 of the old value T1; the other flags stay (SF/OF/AF/PF are undefined, ZF unchanged): the flags
    /// of before go to CpuState and tier 0's SetStatus merges CF in, as tier 0 does.</summary>
    static void EmitBitCarry(BlockEmitter e)
    {
        var il = e.Il;
        e.FlushPending();
        il.Gen.Emit(OpCodes.Ldarg_1); il.Const(RFlags.CF);
        il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And);
        il.Call(MSetStatus);
    }
}
