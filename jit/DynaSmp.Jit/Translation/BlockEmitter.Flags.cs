using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

// Lazy flags: the pending record, conditions from it, and flushing it to CpuState.
sealed unsafe partial class BlockEmitter
{
    /// <summary>Records a flag-producing operation; computes nothing if no later instruction reads the flags.</summary>
    internal void SetFlags(FlagOp op, int size, Local64 res, Local64 a, Local64 b)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        // PERF: a SUB/CMP record's result is its operands' difference (LoadFlagRes), so it is not kept: a compare and
        // branch closing a loop computed and carried it through every iteration for the exit paths alone.
        if (op != FlagOp.Sub) { Il.Load(res); Il.Store(_fres); }
        Il.Load(a); Il.Store(_fa);
        Il.Load(b); Il.Store(_fb);
        _pending = op;
        _pendingSize = size;
    }

    /// <summary>INC/DEC keep CF: compute the carry-in inline from the pending operation (or read it from
    /// CpuState) and record it as the operation's second operand, so nothing is flushed or called.</summary>
    internal void SetIncDecFlags(FlagOp op, int size, Local64 res, Local64 a)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        if (!CfLiveAfter)
        {
            Il.Const(0); Il.Store(_fb);
        }
        else
        {
            EmitCarry();
            Il.Store(_fb);
        }
        Il.Load(res); Il.Store(_fres);
        Il.Load(a); Il.Store(_fa);
        _pending = op;
        _pendingSize = size;
    }

    /// <summary>Pushes the current CF as a 64-bit 0 or 1: from the pending operation's operands when it is known at
    /// compile time, else from CpuState.</summary>
    internal void EmitCarry()
    {
        switch (_pending)
        {
            case FlagOp.Sub: Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Clt_Un); Il.Emit(OpCodes.Conv_U8); break;
            case FlagOp.Add: Il.Load(_fres); Il.Load(_fa); Il.Emit(OpCodes.Clt_Un); Il.Emit(OpCodes.Conv_U8); break;
            case FlagOp.Logic: Il.Const(0); break;
            case FlagOp.Inc: case FlagOp.Dec: Il.Load(_fb); break;
            case FlagOp.Shift: Il.Load(_fa); break; // the shift's computed CF
            case DynamicFlags:
                // The entry record is in the flag locals (or CpuState): CF without storing it to CpuState first.
                Il.Gen.Emit(OpCodes.Ldarg_1); Il.Gen.Emit(OpCodes.Ldloc, _curFlags); Il.Load(_fres); Il.Load(_fa); Il.Load(_fb);
                Il.Call(MCarryOfRecord);
                break;
            default:
                if (TryEmitDeferredCarry()) break;
                FlushPending(); // CpuState must hold the flags before Carry reads them
                Il.Gen.Emit(OpCodes.Ldarg_1); Il.Call(MCarry);
                break;
        }
    }

    /// <summary>Replaces the status flags in <paramref name="mask"/> with those in <paramref name="value"/> and keeps the others
    /// (tier 0's <see cref="Flags.SetStatus"/>): for instructions that write only some flags (BT*, BSF/BSR, LZCNT, SAHF, CLC...).
    /// Emits nothing when no later instruction reads a flag.</summary>
    internal void SetStatusFlags(ulong mask, Local64 value)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        FlushPending();
        Il.Gen.Emit(OpCodes.Ldarg_1); Il.Const(mask); Il.Load(value); Il.Call(MSetStatus);
    }

    /// <summary>A helper just wrote the flags into CpuState: nothing is pending any more.</summary>
    internal void FlagsWrittenToState() => _pending = FlagOp.None;

    /// <summary>After a helper call that may have set CpuState.PendingFault: leave precisely (state as before the
    /// instruction) if it did.</summary>
    internal void BranchIfFaulted()
    {
        var fault = FaultExit();
        Il.LoadState32(StateOffsets.PendingFault);
        Il.Emit(OpCodes.Brtrue, fault);
    }

    internal void FlushPending()
    {
        FlushFlags(_pending, _pendingSize);
        _pending = FlagOp.None;
    }

    void FlushFlags(FlagOp op, int size)
    {
        if (op == DynamicFlags)
        {
            EmitEncodedFlagsStore(_curFlags);
            Il.ConstI4(0); Il.Gen.Emit(OpCodes.Stloc, _curFlags);
            return;
        }
        if (op == FlagOp.None || FlushDeferred(op, size)) return;
        Il.StoreState32Const(StateOffsets.FlagOp, (int)op);
        Il.StoreState32Const(StateOffsets.FlagSize, size);
        Il.StateAddress(StateOffsets.FlagRes); LoadFlagRes(op); Il.Emit(OpCodes.Stind_I8);
        Il.StoreState64(StateOffsets.FlagSrc1, _fa);
        Il.StoreState64(StateOffsets.FlagSrc2, _fb);
    }

    /// <summary>Pushes the pending record's result: for SUB (and CMP, NEG, CMPXCHG, CMPS, SCAS) its operands' difference,
    /// which is not kept in <see cref="_fres"/> (see <see cref="SetFlags"/>); every reader masks it to the operation
    /// size, as CpuState's readers do.</summary>
    void LoadFlagRes(FlagOp op)
    {
        if (op == FlagOp.Sub) { Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Sub); }
        else Il.Load(_fres);
    }

    /// <summary>Pushes 1 if condition <paramref name="cc"/> (x86 encoding) holds, else 0.</summary>
    internal void EmitCondition(int cc)
    {
        if (TryEmitFusedCondition(cc)) return;
        FlushPending();
        Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(cc);
        Il.Call(MCondition);
    }

    bool TryEmitFusedCondition(int cc)
    {
        int size = _pendingSize;
        bool not = (cc & 1) != 0;
        if (PendingIsShiftImmediate)
        {
            switch (cc & ~1)
            {
                case 0: EmitShiftImmediateOverflow(); Il.Emit(OpCodes.Conv_I4); break; // OF
                case 2: EmitShiftImmediateCarry(); Il.Emit(OpCodes.Conv_I4); break;    // CF
                case 4: EmitZero(); break;
                case 8: EmitSign(size); break;
                default: return false;
            }
            if (not) { Il.ConstI4(0); Il.Emit(OpCodes.Ceq); }
            return true;
        }
        switch (_pending)
        {
            case FlagOp.Sub:
                switch (cc & ~1)
                {
                    case 2: Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Clt_Un); break;                 // B / AE
                    case 4: Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Ceq); break;                    // E / NE
                    case 6: Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Cgt_Un); not = !not; break;     // BE / A
                    case 8: EmitSign(size); break;                                                      // S / NS
                    case 0xC: Il.Load(_fa); Il.SignExtend(size); Il.Load(_fb); Il.SignExtend(size); Il.Emit(OpCodes.Clt); break;              // L / GE
                    case 0xE: Il.Load(_fa); Il.SignExtend(size); Il.Load(_fb); Il.SignExtend(size); Il.Emit(OpCodes.Cgt); not = !not; break; // LE / G
                    default: return false;
                }
                break;
            case FlagOp.Logic:
                switch (cc & ~1)
                {
                    case 0: case 2: Il.ConstI4(0); break;                           // OF = CF = 0
                    case 4: case 6: EmitZero(); break;                              // ZF; CF|ZF = ZF
                    case 8: case 0xC: EmitSign(size); break;                        // SF; SF^OF = SF
                    case 0xE: EmitZero(); EmitSign(size); Il.Emit(OpCodes.Or); break; // ZF | (SF^OF)
                    default: return false;
                }
                break;
            case FlagOp.Shift:
                switch (cc & ~1)
                {
                    case 0: Il.Load(_fb); Il.Emit(OpCodes.Conv_I4); break; // OF
                    case 2: Il.Load(_fa); Il.Emit(OpCodes.Conv_I4); break; // CF
                    case 4: EmitZero(); break;
                    case 8: EmitSign(size); break;
                    default: return false;
                }
                break;
            case FlagOp.Inc: case FlagOp.Dec:
                switch (cc & ~1)
                {
                    case 2: Il.Load(_fb); Il.Emit(OpCodes.Conv_I4); break; // the kept carry
                    case 4: EmitZero(); break;
                    case 8: EmitSign(size); break;
                    default: return false;
                }
                break;
            case FlagOp.Add:
                switch (cc & ~1)
                {
                    case 2: Il.Load(_fres); Il.Load(_fa); Il.Emit(OpCodes.Clt_Un); break; // CF = res < a
                    case 4: EmitZero(); break;
                    case 8: EmitSign(size); break;
                    default: return false;
                }
                break;
            default:
                return false;
        }
        if (not) { Il.ConstI4(0); Il.Emit(OpCodes.Ceq); }
        return true;
    }

    void EmitZero() { LoadFlagRes(_pending); Il.Const(0); Il.Emit(OpCodes.Ceq); }

    void EmitSign(int size)
    {
        LoadFlagRes(_pending); Il.ConstI4(size * 8 - 1); Il.Emit(OpCodes.Shr_Un); Il.Emit(OpCodes.Conv_I4); Il.ConstI4(1); Il.Emit(OpCodes.And);
    }
}
