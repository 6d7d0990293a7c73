using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>Tier-1 lowering of small non-system instructions that need no registers written back: PAUSE (a spin-wait
/// loop compiled into a region calls it on every iteration), CLC/STC/CMC, CLD/STD, LAHF/SAHF.</summary>
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
        e.SetStatusFlags(RFlags.CF, e.T1);
    }

    // LAHF: AH = SF:ZF:0:AF:0:PF:1:CF. SAHF: SF, ZF, AF, PF, CF from AH; OF stays (SDM Vol. 2A "LAHF", Vol. 2B "SAHF").
    static void LahfSahf(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        const ulong fromAh = RFlags.Status & ~RFlags.OF;
        if (i.Mnemonic == Mnemonic.Sahf)
        {
            e.LoadReg(Register.AH); il.Store(e.T1);
            e.SetStatusFlags(fromAh, e.T1);
            return;
        }
        e.FlushPending();
        il.Gen.Emit(OpCodes.Ldarg_1); il.Call(MFlagsGet);
        il.Const(fromAh); il.Emit(OpCodes.And); il.Const(RFlags.Reserved1); il.Emit(OpCodes.Or); il.Store(e.T1);
        e.StoreReg(Register.AH, e.T1);
    }

    // PUSHF/PUSHFD/PUSHFQ in 32- or 64-bit code (never virtual-8086, where IOPL can make it fault): RFLAGS with the
    // lazy status flags materialised and VM and RF cleared in the image (SDM Vol. 2B PUSHF), as tier 0 pushes it.
    static void Pushf(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = -i.StackPointerIncrement;
        e.FlushPending();
        il.Gen.Emit(OpCodes.Ldarg_1); il.Call(MFlagsGet);
        il.Const(~(RFlags.VM | RFlags.RF)); il.Emit(OpCodes.And); il.Store(e.T1);
        e.StackLinear(-size);
        e.EmitWrite(size, e.T1);
        e.SetStackPointer(e.Off);
    }

    // CLI: #GP(0) in protected mode when CPL > IOPL (VME/PVI are not offered), else IF = 0. IF is never lazy.
    static void Cli(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var allowed = il.Label();
        il.LoadState64(StateOffsets.Cr0); il.Const(Cr0.PE); il.Emit(OpCodes.And); il.Emit(OpCodes.Brfalse, allowed);
        il.StateAddress(StateOffsets.Cpl); il.Emit(OpCodes.Ldind_U1); il.Emit(OpCodes.Conv_U8);
        il.LoadState64(StateOffsets.Rflags); il.ConstI4(12); il.Emit(OpCodes.Shr_Un); il.Const(3); il.Emit(OpCodes.And);
        il.Emit(OpCodes.Bgt_Un, e.RaiseException(Vector.GP));
        il.Mark(allowed);
        il.StateAddress(StateOffsets.Rflags);
        il.LoadState64(StateOffsets.Rflags); il.Const(~RFlags.IF); il.Emit(OpCodes.And);
        il.Emit(OpCodes.Stind_I8);
    }

    // RDTSC/RDTSCP: EDX:EAX = the TSC (and ECX = IA32_TSC_AUX), through a helper that checks CR4.TSD, instead of a tier-0
    // call that writes every register back.
    static void Rdtsc(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        il.Gen.Emit(OpCodes.Ldarg_0); il.Call(MReadTsc); il.Store(e.T1);
        e.BranchIfFaulted();
        e.StoreReg(Register.EAX, e.T1);
        il.Load(e.T1); il.ConstI4(32); il.Emit(OpCodes.Shr_Un); il.Store(e.T2);
        e.StoreReg(Register.EDX, e.T2);
        if (i.Mnemonic == Mnemonic.Rdtscp) { il.LoadState64(StateOffsets.TscAux); il.Store(e.T3); e.StoreReg(Register.ECX, e.T3); }
    }

    static readonly MethodInfo MReadTsc = typeof(JitHelpers).GetMethod(nameof(JitHelpers.ReadTsc))!;

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

    static readonly MethodInfo MFlagsGet = typeof(Flags).GetMethod(nameof(Flags.Get))!;
    static readonly MethodInfo MPause = typeof(Interp).GetMethod(nameof(Interp.Pause))!;
}
