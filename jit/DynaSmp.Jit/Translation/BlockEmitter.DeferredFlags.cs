using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Flag records that only exist at compile time. Rotates, shifts by CL and SHLD/SHRD have flags only tier 0's
/// helpers compute, and ADC/SBB pick their FlagOp from the carry-in at run time. Their operands wait in the flag
/// locals and the helper (or the store of the chosen FlagOp) is emitted only where the flags are flushed: at a
/// read, an exit, a fault exit. Computing them eagerly cost a helper call before every later memory access
/// (anything that can fault keeps all flags live), which made `rol; mov r, [m]` loops several times slower.
/// </summary>
sealed unsafe partial class BlockEmitter
{
    // Encoded in _pending above every runtime FlagOp (never stored to CpuState as such): the kind in the high
    // half, its compile-time argument (mnemonic, SHLD = 1, base FlagOp) in the low half.
    const int DeferredShiftRotate = 0x10000, DeferredShiftDouble = 0x20000, DeferredCarryIn = 0x30000;
    const int DeferredKindMask = ~0xFFFF;

    // The carry-in of a deferred ADC/SBB record.
    Local64 _fc;

    /// <summary>ROL/ROR, or a shift whose count may be 0: tier 0's <see cref="Interp.ShiftRotateFlags"/> of the operand
    /// <paramref name="a"/> and masked count <paramref name="count"/>. It keeps some flags (and all of them for a zero
    /// count), so the flags of before go to CpuState first.</summary>
    internal void SetFlagsShiftRotate(Iced.Intel.Mnemonic m, int size, Local64 a, Local64 count)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        FlushPending();
        Il.Load(a); Il.Store(_fa);
        Il.Load(count); Il.Store(_fb);
        _pending = (FlagOp)(DeferredShiftRotate | (int)m);
        _pendingSize = size;
    }

    /// <summary>SHLD/SHRD: tier 0's <see cref="Interp.ShiftDoubleFlags"/>. A non-zero immediate count writes every
    /// status flag, so only a CL count needs the flags of before in CpuState.</summary>
    internal void SetFlagsShiftDouble(bool left, bool countMayBeZero, int size, Local64 a, Local64 b, Local64 count)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        if (countMayBeZero) FlushPending();
        Il.Load(a); Il.Store(_fa);
        Il.Load(b); Il.Store(_fres);
        Il.Load(count); Il.Store(_fb);
        _pending = (FlagOp)(DeferredShiftDouble | (left ? 1 : 0));
        _pendingSize = size;
    }

    /// <summary>ADC/SBB: <paramref name="baseOp"/> (Add or Sub) plus the carry-in (0 or 1) gives Adc1/Sbb1 at run time.</summary>
    internal void SetFlagsWithCarryIn(FlagOp baseOp, Local64 carry, int size, Local64 res, Local64 a, Local64 b)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        Il.Load(res); Il.Store(_fres);
        Il.Load(a); Il.Store(_fa);
        Il.Load(b); Il.Store(_fb);
        Il.Load(carry); Il.Store(_fc);
        _pending = (FlagOp)(DeferredCarryIn | (int)baseOp);
        _pendingSize = size;
    }

    /// <summary>Emits the flush of a deferred record; false for a runtime FlagOp (the caller stores it).</summary>
    bool FlushDeferred(FlagOp op, int size)
    {
        int arg = (int)op & 0xFFFF;
        switch ((int)op & DeferredKindMask)
        {
            case DeferredShiftRotate:
                Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(arg); Il.ConstI4(size); Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Conv_I4);
                Il.Call(MShiftRotateFlags);
                return true;
            case DeferredShiftDouble:
                Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(arg); Il.ConstI4(size); Il.Load(_fa); Il.Load(_fres); Il.Load(_fb); Il.Emit(OpCodes.Conv_I4);
                Il.Call(MShiftDoubleFlags);
                return true;
            case DeferredCarryIn:
                // Adc1 = Add + 1, Sbb1 = Sub + 1.
                Il.StateAddress(StateOffsets.FlagOp); Il.ConstI4(arg); Il.Load(_fc); Il.Emit(OpCodes.Conv_I4); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Stind_I4);
                Il.StoreState32Const(StateOffsets.FlagSize, size);
                Il.StoreState64(StateOffsets.FlagRes, _fres);
                Il.StoreState64(StateOffsets.FlagSrc1, _fa);
                Il.StoreState64(StateOffsets.FlagSrc2, _fb);
                return true;
            default:
                return false;
        }
    }

    /// <summary>CF of a deferred ADC/SBB from its operands (an ADD/ADC chain needs no flush); false for other records.</summary>
    bool TryEmitDeferredCarry()
    {
        if (((int)_pending & DeferredKindMask) != DeferredCarryIn) return false;
        bool add = ((int)_pending & 0xFFFF) == (int)FlagOp.Add;
        // ADC: res < a, or res == a with a carry-in. SBB: a < b, or a == b with a borrow-in.
        if (add) { Il.Load(_fres); Il.Load(_fa); } else { Il.Load(_fa); Il.Load(_fb); }
        Il.Emit(OpCodes.Clt_Un);
        if (add) { Il.Load(_fres); Il.Load(_fa); } else { Il.Load(_fa); Il.Load(_fb); }
        Il.Emit(OpCodes.Ceq);
        Il.Load(_fc); Il.Emit(OpCodes.Conv_I4); Il.Emit(OpCodes.And);
        Il.Emit(OpCodes.Or);
        Il.Emit(OpCodes.Conv_U8);
        return true;
    }

    static readonly MethodInfo MShiftRotateFlags = typeof(Interp).GetMethod(nameof(Interp.ShiftRotateFlags))!;
    static readonly MethodInfo MShiftDoubleFlags = typeof(Interp).GetMethod(nameof(Interp.ShiftDoubleFlags))!;
}
