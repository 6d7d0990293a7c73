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
    const int DeferredShiftRotate = 0x10000, DeferredShiftDouble = 0x20000, DeferredCarryIn = 0x30000, DeferredShiftImm = 0x40000;
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

    /// <summary>SHL/SAL/SHR/SAR by a non-zero immediate count (masked): every status flag is written, CF and OF follow
    /// from the original operand <paramref name="a"/> and the count, which is a compile-time constant. Recorded as the
    /// result and the operand only; CF and OF are computed where they are read or flushed.</summary>
    /// <remarks>PERF: computed eagerly (as <see cref="FlagOp.Shift"/>), a shift's CF and OF lived until the next flag
    /// writer whenever an access that can fault came first, as in a table-driven CRC's `shr eax, 8; xor eax, [table]`:
    /// seven host instructions per iteration for flags nothing read.</remarks>
    internal void SetFlagsShiftImmediate(Iced.Intel.Mnemonic m, int count, int size, Local64 res, Local64 a)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        int kind = m switch { Iced.Intel.Mnemonic.Shr => 1, Iced.Intel.Mnemonic.Sar => 2, _ => 0 };
        Il.Load(res); Il.Store(_fres);
        Il.Load(a); Il.Store(_fa);
        _pending = (FlagOp)(DeferredShiftImm | kind << 8 | count);
        _pendingSize = size;
    }

    bool PendingIsShiftImmediate => ((int)_pending & DeferredKindMask) == DeferredShiftImm;

    // SDM "SAL/SAR/SHL/SHR": CF = last bit shifted out; OF (defined for count 1) = MSB(result) XOR CF for left shifts,
    // MSB(original) for SHR, 0 for SAR. AF is undefined: 0, as the interpreter has it.
    /// <summary>Pushes CF (0 or 1, 64-bit) of the pending deferred immediate shift: the last bit shifted out of _fa.</summary>
    void EmitShiftImmediateCarry()
    {
        int kind = ((int)_pending >> 8) & 0xFF, count = (int)_pending & 0xFF, bits = _pendingSize * 8;
        switch (kind)
        {
            case 1: Il.Load(_fa); Il.ConstI4(count - 1); Il.Emit(OpCodes.Shr_Un); break;
            case 2: Il.Load(_fa); Il.SignExtend(_pendingSize); Il.ConstI4(count - 1); Il.Emit(OpCodes.Shr); break;
            default:
                // 8/16-bit operands shifted past their width: the last bit out is 0.
                if (count > bits) { Il.Const(0); return; }
                Il.Load(_fa); Il.ConstI4(bits - count); Il.Emit(OpCodes.Shr_Un);
                break;
        }
        Il.Const(1); Il.Emit(OpCodes.And);
    }

    /// <summary>Pushes OF (0 or 1, 64-bit) of the pending deferred immediate shift, as tier 0 computes it for any count:
    /// MSB(result) XOR CF for left shifts, MSB(original) for SHR, 0 for SAR.</summary>
    void EmitShiftImmediateOverflow()
    {
        int kind = ((int)_pending >> 8) & 0xFF, bits = _pendingSize * 8;
        switch (kind)
        {
            case 1: Il.Load(_fa); Il.ConstI4(bits - 1); Il.Emit(OpCodes.Shr_Un); Il.Const(1); Il.Emit(OpCodes.And); break;
            case 2: Il.Const(0); break;
            default:
                Il.Load(_fres); Il.ConstI4(bits - 1); Il.Emit(OpCodes.Shr_Un); EmitShiftImmediateCarry(); Il.Emit(OpCodes.Xor);
                Il.Const(1); Il.Emit(OpCodes.And);
                break;
        }
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
            case DeferredShiftImm:
            {
                var saved = (_pending, _pendingSize);
                (_pending, _pendingSize) = (op, size);
                Il.StoreState32Const(StateOffsets.FlagOp, (int)FlagOp.Shift);
                Il.StoreState32Const(StateOffsets.FlagSize, size);
                Il.StoreState64(StateOffsets.FlagRes, _fres);
                Il.StateAddress(StateOffsets.FlagSrc1); EmitShiftImmediateCarry(); Il.Emit(OpCodes.Stind_I8);
                Il.StateAddress(StateOffsets.FlagSrc2); EmitShiftImmediateOverflow(); Il.Emit(OpCodes.Stind_I8);
                (_pending, _pendingSize) = saved;
                return true;
            }
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
        if (PendingIsShiftImmediate) { EmitShiftImmediateCarry(); return true; }
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
