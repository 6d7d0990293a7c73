using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>Tier-1 lowering of the bit instructions: BSF/BSR, TZCNT/LZCNT/POPCNT, and BT/BTS/BTR/BTC (SDM Vol. 2A "BT"): register and memory operands, immediate and register
/// bit offsets (a register offset into memory selects the operand-sized unit at EA + size * (offset DIV width), below
/// or above the operand), LOCK forms through <see cref="BlockEmitter.EmitAtomic"/>. Only CF changes.</summary>
static partial class InstEmit
{
    /// <summary>A register offset into memory moves the address; lowered where the wrap of the moved address is the
    /// linear wrap tier 1 already applies: 64-bit addressing in 64-bit mode, 32-bit addressing in flat 32-bit code.</summary>
    static bool BitTestLowerable(in Instruction i, int stackWidth) =>
        i.Op0Kind != OpKind.Memory || i.Op1Kind != OpKind.Register || X86Operands.AddressSize(i) == stackWidth;

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
            if (!e.Is64) il.Truncate(4);
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

    /// <summary>CF = bit T2 of the old value T1; the other flags stay (SF/OF/AF/PF are undefined, ZF unchanged), as tier 0 does.</summary>
    static void EmitBitCarry(BlockEmitter e)
    {
        var il = e.Il;
        il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And);
        il.Store(e.T3);
        e.SetStatusFlags(RFlags.CF, e.T3);
    }

    /// <summary>BSF/BSR (SDM Vol. 2A "BSF", "BSR"): ZF = source is zero; a zero source leaves the destination unchanged (as
    /// Intel and AMD parts do, and tier 0); the other flags are undefined and left as they were, as tier 0 leaves them.</summary>
    static void BitScan(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, size, e.T1);
        var zero = il.Label();
        il.Load(e.T1); il.Emit(OpCodes.Brfalse, zero);
        if (i.Mnemonic == Mnemonic.Bsf) { il.Load(e.T1); il.Call(MTrailingZeros); }
        else { il.ConstI4(63); il.Load(e.T1); il.Call(MLeadingZeros); il.Emit(OpCodes.Sub); }
        il.Emit(OpCodes.Conv_U8); il.Store(e.Val);
        e.StoreReg(i.Op0Register, e.Val);
        il.Mark(zero);
        EmitZeroFlag(e, e.T1, e.T2);
        e.SetStatusFlags(RFlags.ZF, e.T2);
    }

    /// <summary>TZCNT/LZCNT (CF = source is zero, ZF = result is zero; OF/SF/AF/PF undefined, left as they were) and POPCNT
    /// (ZF = source is zero, the other status flags cleared): SDM Vol. 2B "LZCNT", "POPCNT", "TZCNT".</summary>
    static void BitCount(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        int bits = size * 8;
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 1, size, e.T1);
        switch (i.Mnemonic)
        {
            case Mnemonic.Popcnt:
                il.Load(e.T1); il.Call(MPopCount);
                break;
            case Mnemonic.Tzcnt:
                // A sentinel bit just above the operand makes a zero source count to the operand width.
                il.Load(e.T1); if (size < 8) { il.Const(1UL << bits); il.Emit(OpCodes.Or); }
                il.Call(MTrailingZeros);
                break;
            default: // Lzcnt: the 64-bit count less the bits above the operand (a zero source gives the width)
                il.Load(e.T1); il.Call(MLeadingZeros); il.ConstI4(64 - bits); il.Emit(OpCodes.Sub);
                break;
        }
        il.Emit(OpCodes.Conv_U8); il.Store(e.Val);
        e.StoreReg(i.Op0Register, e.Val);
        if (i.Mnemonic == Mnemonic.Popcnt)
        {
            EmitZeroFlag(e, e.T1, e.T2);
            e.SetStatusFlags(RFlags.Status, e.T2);
            return;
        }
        EmitZeroFlag(e, e.Val, e.T2);
        il.Load(e.T1); il.Const(0); il.Emit(OpCodes.Ceq); il.Emit(OpCodes.Conv_U8); il.Load(e.T2); il.Emit(OpCodes.Or); il.Store(e.T2); // CF is bit 0
        e.SetStatusFlags(RFlags.CF | RFlags.ZF, e.T2);
    }

    /// <summary><paramref name="flags"/> = ZF (bit 6) if <paramref name="v"/> is zero, else 0.</summary>
    static void EmitZeroFlag(BlockEmitter e, Local64 v, Local64 flags)
    {
        var il = e.Il;
        il.Load(v); il.Const(0); il.Emit(OpCodes.Ceq); il.Emit(OpCodes.Conv_U8); il.ConstI4(6); il.Emit(OpCodes.Shl); il.Store(flags);
    }

    static readonly MethodInfo MTrailingZeros = typeof(BitOperations).GetMethod(nameof(BitOperations.TrailingZeroCount), [typeof(ulong)])!;
    static readonly MethodInfo MLeadingZeros = typeof(BitOperations).GetMethod(nameof(BitOperations.LeadingZeroCount), [typeof(ulong)])!;
    static readonly MethodInfo MPopCount = typeof(BitOperations).GetMethod(nameof(BitOperations.PopCount), [typeof(ulong)])!;
}
