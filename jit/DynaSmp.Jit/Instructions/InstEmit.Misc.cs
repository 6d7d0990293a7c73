using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>Tier-1 lowering of small non-system instructions that need no registers written back: PAUSE (a spin-wait
/// loop compiled into a region calls it on every iteration), CLC/STC/CMC, CLD/STD.</summary>
static partial class InstEmit
{
    static void Pause(BlockEmitter e, in Instruction i)
    {
        e.Il.Gen.Emit(OpCodes.Ldarg_0);
        e.Il.Call(MPause);
    }

    // CLC/STC/CMC change CF only: the other flags of before go to CpuState, tier 0's SetStatus merges CF in.
    static void CarryFlag(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        if (i.Mnemonic == Mnemonic.Cmc) { e.EmitCarry(); il.Const(1); il.Emit(OpCodes.Xor); }
        else il.Const(i.Mnemonic == Mnemonic.Stc ? 1UL : 0);
        il.Store(e.T1);
        e.FlushPending();
        il.Gen.Emit(OpCodes.Ldarg_1); il.Const(RFlags.CF); il.Load(e.T1); il.Call(MSetStatus);
    }

    // CLD/STD: DF is never lazy; it lives in CpuState.Rflags.
    static void DirectionFlag(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        il.StateAddress(StateOffsets.Rflags);
        il.Emit(OpCodes.Dup); il.Emit(OpCodes.Ldind_I8);
        if (i.Mnemonic == Mnemonic.Std) { il.Const(RFlags.DF); il.Emit(OpCodes.Or); }
        else { il.Const(~RFlags.DF); il.Emit(OpCodes.And); }
        il.Emit(OpCodes.Stind_I8);
    }

    static readonly MethodInfo MPause = typeof(Interp).GetMethod(nameof(Interp.Pause))!;
}
