using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of the atomic instructions SMP guests use for locks and counters: XCHG with memory, LOCK-prefixed
/// read-modify-write ALU operations, XADD, CMPXCHG, CMPXCHG8B. Memory forms are one host atomic on the host address of
/// a write-TLB hit (<see cref="BlockEmitter.EmitAtomic"/>); every other case runs through tier 0. Memory forms without
/// LOCK are lowered the same way: an atomic update is one of the orders a plain one may have.
/// </summary>
static partial class InstEmit
{
    /// <summary>LOCK-prefixed forms lowered inline: a memory destination (LOCK with a register destination is #UD, in tier 0).</summary>
    static bool LockedLowerable(in Instruction i) =>
        i.Op0Kind == OpKind.Memory && (IsLockedAlu(i.Mnemonic) || i.Mnemonic is Mnemonic.Xchg or Mnemonic.Xadd or Mnemonic.Cmpxchg or Mnemonic.Cmpxchg8b
            or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc or Mnemonic.Cmpxchg16b);

    static bool IsLockedAlu(Mnemonic m) => m is Mnemonic.Add or Mnemonic.Sub or Mnemonic.And or Mnemonic.Or or Mnemonic.Xor
        or Mnemonic.Adc or Mnemonic.Sbb or Mnemonic.Inc or Mnemonic.Dec or Mnemonic.Neg or Mnemonic.Not;

    // XCHG r, r; XCHG with memory is locked with or without the prefix.
    static void Xchg(BlockEmitter e, in Instruction i)
    {
        if (!HasMemory(i)) { XchgRegisters(e, i); return; }
        var il = e.Il;
        int size = OperandSize(i, 0);
        var reg = i.GetOpRegister(i.Op0Kind == OpKind.Memory ? 1 : 0);
        e.ComputeLinear();
        e.LoadReg(reg); il.Store(e.T1);
        e.EmitAtomic(size, host =>
        {
            il.Gen.Emit(OpCodes.Ldloc, host); il.ConstI4(size); il.Load(e.T1); il.Call(MExchange); il.Store(e.Val);
            e.StoreReg(reg, e.Val);
        });
    }

    /// <summary>Emits a compare-exchange retry loop: T1 = the old value, Val = <paramref name="update"/>(T1) truncated,
    /// stored if the location still holds T1.</summary>
    static void EmitUpdateLoop(BlockEmitter e, LocalBuilder host, int size, Action update)
    {
        var il = e.Il;
        var retry = il.Label();
        il.Mark(retry);
        il.Gen.Emit(OpCodes.Ldloc, host); il.ConstI4(size); il.Call(MAtomicLoad); il.Store(e.T1);
        update();
        il.Truncate(size); il.Store(e.Val);
        il.Gen.Emit(OpCodes.Ldloc, host); il.ConstI4(size); il.Load(e.Val); il.Load(e.T1); il.Call(MCompareExchange);
        il.Load(e.T1); il.Emit(OpCodes.Bne_Un, retry);
    }

    // LOCK ADD/SUB/AND/OR/XOR/ADC/SBB/INC/DEC/NEG/NOT m: the ALU result through a compare-exchange loop, flags as unlocked.
    static void LockedAlu(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        int size = OperandSize(i, 0);
        e.ComputeLinear();
        if (i.OpCount > 1) ReadOperand(e, i, 1, size, e.T2);
        bool carryIn = m is Mnemonic.Adc or Mnemonic.Sbb;
        if (carryIn) { e.EmitCarry(); il.Store(e.T3); }
        e.EmitAtomic(size, host =>
        {
            EmitUpdateLoop(e, host, size, () =>
            {
                switch (m)
                {
                    case Mnemonic.Inc: il.Load(e.T1); il.Const(1); il.Emit(OpCodes.Add); break;
                    case Mnemonic.Dec: il.Load(e.T1); il.Const(1); il.Emit(OpCodes.Sub); break;
                    case Mnemonic.Neg: il.Const(0); il.Load(e.T1); il.Emit(OpCodes.Sub); break;
                    case Mnemonic.Not: il.Load(e.T1); il.Emit(OpCodes.Not); break;
                    case Mnemonic.Adc: il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Add); il.Load(e.T3); il.Emit(OpCodes.Add); break;
                    case Mnemonic.Sbb: il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Sub); il.Load(e.T3); il.Emit(OpCodes.Sub); break;
                    default: il.Load(e.T1); il.Load(e.T2); BinaryOp(il, m); break;
                }
            });
            switch (m)
            {
                case Mnemonic.Inc: e.SetIncDecFlags(FlagOp.Inc, size, e.Val, e.T1); break;
                case Mnemonic.Dec: e.SetIncDecFlags(FlagOp.Dec, size, e.Val, e.T1); break;
                case Mnemonic.Neg: il.Const(0); il.Store(e.T4); e.SetFlags(FlagOp.Sub, size, e.Val, e.T4, e.T1); break;
                case Mnemonic.Not: break;
                case Mnemonic.Adc or Mnemonic.Sbb: e.SetFlagsWithCarryIn(m == Mnemonic.Adc ? FlagOp.Add : FlagOp.Sub, e.T3, size, e.Val, e.T1, e.T2); break;
                default: e.SetFlags(m switch { Mnemonic.Add => FlagOp.Add, Mnemonic.Sub => FlagOp.Sub, _ => FlagOp.Logic }, size, e.Val, e.T1, e.T2); break;
            }
        });
    }

    // XADD r/m, r: SRC = old DEST, DEST = old DEST + SRC; flags of the addition.
    static void Xadd(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        var src = i.Op1Register;
        if (!HasMemory(i))
        {
            e.LoadReg(i.Op0Register); il.Store(e.T1);
            e.LoadReg(src); il.Store(e.T2);
            il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Add); il.Truncate(size); il.Store(e.Val);
            // SRC <- DEST, then DEST <- sum: with the same register twice the sum wins.
            e.StoreReg(src, e.T1);
            e.StoreReg(i.Op0Register, e.Val);
            e.SetFlags(FlagOp.Add, size, e.Val, e.T1, e.T2);
            return;
        }
        e.ComputeLinear();
        e.LoadReg(src); il.Store(e.T2);
        e.EmitAtomic(size, host =>
        {
            EmitUpdateLoop(e, host, size, () => { il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Add); });
            e.StoreReg(src, e.T1);
            e.SetFlags(FlagOp.Add, size, e.Val, e.T1, e.T2);
        });
    }

    // CMPXCHG r/m, r: DEST == accumulator ? DEST = SRC : accumulator = DEST; flags of CMP accumulator, DEST. A register
    // DEST is written only on success and the accumulator only on failure (no 32-bit zero-extension otherwise).
    static void Cmpxchg(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        var acc = CaseRegister(0, size);
        e.LoadReg(acc); il.Store(e.T1);
        e.LoadReg(i.Op1Register); il.Store(e.T2);
        if (!HasMemory(i))
        {
            var fail = il.Label(); var done = il.Label();
            e.LoadReg(i.Op0Register); il.Store(e.T3);
            il.Load(e.T3); il.Load(e.T1); il.Emit(OpCodes.Bne_Un, fail);
            e.StoreReg(i.Op0Register, e.T2);
            il.Emit(OpCodes.Br, done);
            il.Mark(fail);
            e.StoreReg(acc, e.T3);
            il.Mark(done);
            EmitCompareFlags(e, size);
            return;
        }
        e.ComputeLinear();
        e.EmitAtomic(size, host =>
        {
            var done = il.Label();
            il.Gen.Emit(OpCodes.Ldloc, host); il.ConstI4(size); il.Load(e.T2); il.Load(e.T1); il.Call(MCompareExchange);
            il.Truncate(size); il.Store(e.T3);
            il.Load(e.T3); il.Load(e.T1); il.Emit(OpCodes.Beq, done);
            e.StoreReg(acc, e.T3);
            il.Mark(done);
            EmitCompareFlags(e, size);
        });
    }

    /// <summary>CMP accumulator (T1), DEST (T3).</summary>
    static void EmitCompareFlags(BlockEmitter e, int size)
    {
        var il = e.Il;
        il.Load(e.T1); il.Load(e.T3); il.Emit(OpCodes.Sub); il.Truncate(size); il.Store(e.Val);
        e.SetFlags(FlagOp.Sub, size, e.Val, e.T1, e.T3);
    }

    // CMPXCHG8B m64: EDX:EAX against the operand, ECX:EBX stored on a match, else EDX:EAX = the operand. Only ZF changes,
    // so the flags of before go to CpuState first and tier 0's SetStatus merges ZF in.
    static void Cmpxchg8b(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        e.ComputeLinear();
        e.LoadReg(Register.EDX); il.ConstI4(32); il.Emit(OpCodes.Shl); e.LoadReg(Register.EAX); il.Emit(OpCodes.Or); il.Store(e.T1);
        e.LoadReg(Register.ECX); il.ConstI4(32); il.Emit(OpCodes.Shl); e.LoadReg(Register.EBX); il.Emit(OpCodes.Or); il.Store(e.T2);
        e.FlushPending();
        e.EmitAtomic(8, host =>
        {
            var done = il.Label();
            il.Gen.Emit(OpCodes.Ldloc, host); il.ConstI4(8); il.Load(e.T2); il.Load(e.T1); il.Call(MCompareExchange); il.Store(e.T3);
            il.Gen.Emit(OpCodes.Ldarg_1); il.Const(RFlags.ZF);
            il.Load(e.T3); il.Load(e.T1); il.Emit(OpCodes.Ceq); il.Emit(OpCodes.Conv_U8); il.ConstI4(6); il.Emit(OpCodes.Shl); // ZF is bit 6
            il.Call(MSetStatus);
            il.Load(e.T3); il.Load(e.T1); il.Emit(OpCodes.Beq, done);
            e.StoreReg(Register.EAX, e.T3);
            il.Load(e.T3); il.ConstI4(32); il.Emit(OpCodes.Shr_Un); il.Store(e.T4);
            e.StoreReg(Register.EDX, e.T4);
            il.Mark(done);
        });
    }

    // CMPXCHG16B m128 (64-bit mode): RDX:RAX against the 16-byte-aligned operand (#GP(0) otherwise, checked before any
    // access), RCX:RBX stored on a match, else RDX:RAX = the operand; only ZF changes. One host 16-byte compare-exchange,
    // locked or not (an atomic exchange is a valid unlocked one).
    static void Cmpxchg16b(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        e.ComputeLinear();
        il.Load(e.Lin); il.Const(15); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, e.RaiseException(Cpu.Vector.GP));
        e.LoadReg(Register.RAX); il.Store(e.T1);
        e.LoadReg(Register.RDX); il.Store(e.T2);
        var oldHi = e.OutA; // address-taken for the out parameter
        e.EmitAtomic(16, host =>
        {
            var done = il.Label();
            il.Gen.Emit(OpCodes.Ldloc, host); il.Load(e.T1); il.Load(e.T2); e.LoadReg(Register.RBX); e.LoadReg(Register.RCX);
            il.Gen.Emit(OpCodes.Ldloca, oldHi.Slot);
            il.Call(MCompareExchange16); il.Store(e.Val);
            il.Load(e.Val); il.Load(e.T1); il.Emit(OpCodes.Ceq); il.Load(oldHi); il.Load(e.T2); il.Emit(OpCodes.Ceq); il.Emit(OpCodes.And);
            il.Emit(OpCodes.Conv_U8); il.ConstI4(6); il.Emit(OpCodes.Shl); il.Store(e.T3); // ZF is bit 6
            il.Load(e.T3); il.Emit(OpCodes.Brtrue, done);
            e.StoreReg(Register.RAX, e.Val);
            e.StoreReg(Register.RDX, oldHi);
            il.Mark(done);
            e.SetStatusFlags(RFlags.ZF, e.T3);
        });
    }

    /// <summary>16-byte compare-exchange at <paramref name="p"/> (16-byte aligned): returns the low half found, the high
    /// half in <paramref name="oldHi"/>.</summary>
    public static unsafe ulong CompareExchange16(byte* p, ulong expLo, ulong expHi, ulong newLo, ulong newHi, out ulong oldHi)
    {
        ulong lo = expLo, hi = expHi;
        Cmpxchg16bHost.CompareExchange(p, ref lo, ref hi, newLo, newHi);
        oldHi = hi;
        return lo;
    }

    static readonly MethodInfo MCompareExchange16 = typeof(InstEmit).GetMethod(nameof(CompareExchange16), BindingFlags.Public | BindingFlags.Static)!;
    static readonly MethodInfo MAtomicLoad = typeof(Atomics).GetMethod(nameof(Atomics.Load))!;
    static readonly MethodInfo MCompareExchange = typeof(Atomics).GetMethod(nameof(Atomics.CompareExchange))!;
    static readonly MethodInfo MExchange = typeof(Atomics).GetMethod(nameof(Atomics.Exchange))!;
    static readonly MethodInfo MSetStatus = typeof(Flags).GetMethod(nameof(Flags.SetStatus))!;
}
