using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of the x87 instructions compiled code runs: loads and stores of ST(i), of 2-, 4- and 8-byte memory and FLD/FSTP m80,
/// the arithmetic, the comparisons, FXCH, FCHS/FABS, FLD1/FLDZ, as one call each to the Interp.X87Fast* entry points
/// with everything known at translation time passed as constants (mnemonic, stack indices, FIP, FOP, the segment), the
/// memory operand read or written here through the inline TLB. FLDCW, FNSTCW and FNSTSW are inline. CR0.EM/TS is checked
/// inline; it, or a case the entry point declines (a pending #MF, a stack fault, a store an unmasked exception stops),
/// goes to the out-of-line tier-0 call of the same instruction. BCD operands and the rest stay tier 0.
/// </summary>
static partial class InstEmit
{
    /// <summary>Mnemonics lowered here (ST(i) register operands are allowed only for these).</summary>
    internal static bool IsX87Lowered(Mnemonic m) => Table[(int)m].X87; // from the table, as IsSseLowered

    static void AddX87(Lowering[] t)
    {
        void Add(Lower emit, CanLower? can, params Mnemonic[] ms)
        {
            foreach (var m in ms) t[(int)m] = new(emit, can, false, X87: true);
        }
        Add(X87LoadStore, X87ShortOperand, Mnemonic.Fld, Mnemonic.Fild, Mnemonic.Fst, Mnemonic.Fstp, Mnemonic.Fist, Mnemonic.Fistp,
            Mnemonic.Fisttp);
        Add(X87Arith, X87ShortOperand, Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, Mnemonic.Fsub, Mnemonic.Fsubp, Mnemonic.Fisub,
            Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, Mnemonic.Fmul, Mnemonic.Fmulp, Mnemonic.Fimul, Mnemonic.Fdiv,
            Mnemonic.Fdivp, Mnemonic.Fidiv, Mnemonic.Fdivr, Mnemonic.Fdivrp, Mnemonic.Fidivr);
        Add(X87Compare, X87ShortOperand, Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp, Mnemonic.Fucom, Mnemonic.Fucomp,
            Mnemonic.Fucompp, Mnemonic.Ficom, Mnemonic.Ficomp, Mnemonic.Ftst, Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi,
            Mnemonic.Fucomip);
        Add(X87Stack, null, Mnemonic.Fxch, Mnemonic.Fchs, Mnemonic.Fabs, Mnemonic.Fld1, Mnemonic.Fldz);
        Add(X87Control, null, Mnemonic.Fldcw, Mnemonic.Fnstcw, Mnemonic.Fstcw, Mnemonic.Fnstsw, Mnemonic.Fstsw);
    }

    /// <summary>No memory operand, or one of 2, 4 or 8 bytes, or FLD/FSTP m80fp (BCD stays tier 0).</summary>
    static bool X87ShortOperand(in Instruction i, int _) =>
        !HasMemory(i) || i.MemorySize is MemorySize.Float32 or MemorySize.Float64 or MemorySize.Int16 or MemorySize.Int32 or MemorySize.Int64
        || (i.MemorySize == MemorySize.Float80 && i.Mnemonic is Mnemonic.Fld or Mnemonic.Fstp);

    static MethodInfo X87Entry(string name) =>
        typeof(Interp).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static) ?? throw new MissingMethodException(name);

    static readonly MethodInfo MX87LoadMem = X87Entry(nameof(Interp.X87FastLoadMem)), MX87LoadSt = X87Entry(nameof(Interp.X87FastLoadSt)),
        MX87Constant = X87Entry(nameof(Interp.X87FastConstant)), MX87StoreSt = X87Entry(nameof(Interp.X87FastStoreSt)),
        MX87StoreValue = X87Entry(nameof(Interp.X87FastStoreValue)), MX87StoreDone = X87Entry(nameof(Interp.X87FastStoreDone)),
        MX87Arith = X87Entry(nameof(Interp.X87FastArith)), MX87Compare = X87Entry(nameof(Interp.X87FastCompare)),
        MX87Exchange = X87Entry(nameof(Interp.X87FastExchange)), MX87Sign = X87Entry(nameof(Interp.X87FastSign)),
        MX87LoadControl = X87Entry(nameof(Interp.X87LoadControlWord)), MX87LoadExtended = X87Entry(nameof(Interp.X87FastLoadExtended));

    /// <summary>Starts a lowering: the out-of-line tier-0 path and the CR0.EM/TS check that takes it (#NM or #UD there).
    /// <paramref name="waiting"/>: also take it while an unmasked exception is pending (FSW.ES), for #MF.</summary>
    static Label BeginX87(BlockEmitter e, out Label cont, bool waiting = false)
    {
        var il = e.Il;
        cont = il.Label();
        var slow = e.SlowPath(cont);
        if (e.FpuGuard == 0)
        {
            il.LoadState64(StateOffsets.Cr0); il.Const(Cr0.EM | Cr0.TS); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, slow);
            e.FpuGuard = 1;
        }
        if (waiting) { LoadFpuWord(e, StateOffsets.FpuStatus); il.ConstI4(0x80); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, slow); }
        return slow;
    }

    static void LoadFpuWord(BlockEmitter e, int offset)
    {
        e.Il.StateAddress(offset);
        e.Il.Emit(OpCodes.Ldind_U2);
    }

    /// <summary>The memory operand: its offset (FDP) into T4 and its linear address into Lin; read into T1 if <paramref name="read"/>.</summary>
    static void X87Memory(BlockEmitter e, in Instruction i, bool read)
    {
        var il = e.Il;
        e.ComputeLinear(keepOffset: true);
        il.Load(e.Off); il.Store(e.T4);
        int size = X86Operands.MemSize(i.MemorySize);
        if (size > 8) e.CheckSegmentLimit(size);
        if (!read) return;
        e.EmitRead(Math.Min(size, 8));
        il.Load(e.Val); il.Store(e.T1);
    }

    /// <summary>FIP and FOP as constants; with <paramref name="data"/>, also the segment and FDP (T4) of the memory operand.</summary>
    static void X87Pointers(BlockEmitter e, in Instruction i, bool data)
    {
        var il = e.Il;
        il.Const(e.Is64 ? i.IP : i.IP & 0xFFFF_FFFF);
        il.ConstI4(Interp.X87Fop(i));
        if (!data) return;
        il.ConstI4((int)X86Operands.SegOf(i.MemorySegment));
        il.Load(e.T4);
    }

    static int StIndex(Register r) => r - Register.ST0;

    static void X87LoadStore(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        bool load = m is Mnemonic.Fld or Mnemonic.Fild;
        bool pop = m is Mnemonic.Fstp or Mnemonic.Fistp or Mnemonic.Fisttp;
        var slow = BeginX87(e, out var cont);
        if (!HasMemory(i))
        {
            il.Gen.Emit(OpCodes.Ldarg_1);
            il.ConstI4(StIndex(i.Op0Register));
            if (!load) il.ConstI4(pop ? 1 : 0);
            X87Pointers(e, i, data: false);
            il.Call(load ? MX87LoadSt : MX87StoreSt);
            il.Emit(OpCodes.Brfalse, slow);
        }
        else if (load && i.MemorySize == MemorySize.Float80)
        {
            // Two reads (they have no side effects, so a fault on the second after the first is still precise).
            X87Memory(e, i, read: true);
            il.Load(e.Lin); il.Const(8); il.Emit(OpCodes.Add); il.Store(e.Lin);
            e.EmitRead(2);
            il.Gen.Emit(OpCodes.Ldarg_1);
            il.Load(e.T1); il.Load(e.Val);
            X87Pointers(e, i, data: true);
            il.Call(MX87LoadExtended);
            il.Emit(OpCodes.Brfalse, slow);
        }
        else if (load)
        {
            X87Memory(e, i, read: true);
            il.Gen.Emit(OpCodes.Ldarg_1);
            il.Load(e.T1); il.ConstI4((int)i.MemorySize);
            X87Pointers(e, i, data: true);
            il.Call(MX87LoadMem);
            il.Emit(OpCodes.Brfalse, slow);
        }
        else
        {
            // Convert without changing anything, write (a fault leaves the x87 state as it was), then commit.
            bool extended = i.MemorySize == MemorySize.Float80;
            X87Memory(e, i, read: false);
            if (extended)
            {
                // Two writes: both must land in one page, or a fault on the second would follow a completed first.
                il.Load(e.Lin); il.Const(GuestRam.PageMask); il.Emit(OpCodes.And); il.Const(GuestRam.PageSize - 10); il.Emit(OpCodes.Bgt_Un, slow);
            }
            il.Gen.Emit(OpCodes.Ldarg_1);
            il.ConstI4((int)m); il.ConstI4((int)i.MemorySize);
            il.Gen.Emit(OpCodes.Ldloca, e.OutA.Slot);
            il.Gen.Emit(OpCodes.Ldloca, e.OutB.Slot);
            il.Call(MX87StoreValue);
            il.Emit(OpCodes.Conv_U8); il.Store(e.T2);
            il.Load(e.T2); il.Emit(OpCodes.Brfalse, slow);
            il.Load(e.OutA); il.Store(e.T1);
            if (extended)
            {
                il.Load(e.OutB); il.Store(e.T3);
                e.EmitWrite(8, e.T1);
                il.Load(e.Lin); il.Const(8); il.Emit(OpCodes.Add); il.Store(e.Lin);
                e.EmitWrite(2, e.T3);
            }
            else e.EmitWrite(X86Operands.MemSize(i.MemorySize), e.T1);
            il.Gen.Emit(OpCodes.Ldarg_1);
            il.Load(e.T2); il.Emit(OpCodes.Conv_I4);
            il.ConstI4(pop ? 1 : 0);
            X87Pointers(e, i, data: true);
            il.Call(MX87StoreDone);
        }
        il.Mark(cont);
    }

    static void X87Arith(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginX87(e, out var cont);
        bool mem = HasMemory(i);
        if (mem) X87Memory(e, i, read: true);
        // The operand shapes of tier 0's X87Arith: memory -> ST(0); two registers; none (the popping forms' ST(1), ST(0)).
        int dst = mem ? 0 : i.OpCount >= 2 ? StIndex(i.Op0Register) : 1;
        int src = mem ? -1 : i.OpCount >= 2 ? StIndex(i.Op1Register) : 0;
        il.Gen.Emit(OpCodes.Ldarg_1);
        il.ConstI4((int)i.Mnemonic); il.ConstI4(dst); il.ConstI4(src);
        X87CallWithOperand(e, i, mem, MX87Arith, slow);
        il.Mark(cont);
    }

    /// <summary>The rest of an arithmetic or compare entry point's arguments (the operand's bits, its MemorySize, the
    /// pointers), the call, and the branch to tier 0 when it declines.</summary>
    static void X87CallWithOperand(BlockEmitter e, in Instruction i, bool mem, MethodInfo entry, Label slow)
    {
        var il = e.Il;
        if (mem) il.Load(e.T1); else il.Const(0);
        il.ConstI4((int)i.MemorySize);
        X87PointersOrNone(e, i, mem);
        il.Call(entry);
        il.Emit(OpCodes.Brfalse, slow);
    }

    static void X87Compare(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        var slow = BeginX87(e, out var cont);
        bool mem = HasMemory(i);
        if (mem) X87Memory(e, i, read: true);
        // Tier 0's X87Compare shapes: FTST and memory -1; ST(0), ST(i); ST(i); none (FCOMPP/FUCOMPP and FCOM alone: ST(1)).
        int src = m == Mnemonic.Ftst || mem ? -1 : i.OpCount >= 2 ? StIndex(i.Op1Register) : i.OpCount == 1 ? StIndex(i.Op0Register) : 1;
        il.Gen.Emit(OpCodes.Ldarg_1);
        il.ConstI4((int)m); il.ConstI4(src);
        X87CallWithOperand(e, i, mem, MX87Compare, slow);
        il.Mark(cont);
        if (m is Mnemonic.Fcomi or Mnemonic.Fcomip or Mnemonic.Fucomi or Mnemonic.Fucomip) e.FlagsWrittenToState();
    }

    /// <summary>The pointer arguments of an entry point that takes a memory operand, for a form that may have none (seg -1).</summary>
    static void X87PointersOrNone(BlockEmitter e, in Instruction i, bool mem)
    {
        if (mem) { X87Pointers(e, i, data: true); return; }
        X87Pointers(e, i, data: false);
        e.Il.ConstI4(-1); e.Il.Const(0);
    }

    static void X87Stack(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        var slow = BeginX87(e, out var cont);
        il.Gen.Emit(OpCodes.Ldarg_1);
        switch (m)
        {
            case Mnemonic.Fxch:
                il.ConstI4(i.OpCount >= 2 ? StIndex(i.Op1Register) : 1);
                X87Pointers(e, i, data: false);
                il.Call(MX87Exchange);
                break;
            case Mnemonic.Fchs: case Mnemonic.Fabs:
                il.ConstI4((int)m);
                X87Pointers(e, i, data: false);
                il.Call(MX87Sign);
                break;
            default:
                il.ConstI4((int)m);
                X87Pointers(e, i, data: false);
                il.Call(MX87Constant);
                break;
        }
        il.Emit(OpCodes.Brfalse, slow);
        il.Mark(cont);
    }

    /// <summary>FLDCW, FNSTCW/FSTCW, FNSTSW/FSTSW: control instructions, so no pointers are recorded.</summary>
    static void X87Control(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        BeginX87(e, out var cont, waiting: m is Mnemonic.Fstcw or Mnemonic.Fstsw);
        if (m == Mnemonic.Fldcw)
        {
            e.ComputeLinear();
            e.EmitRead(2);
            il.Gen.Emit(OpCodes.Ldarg_1); il.Load(e.Val);
            il.Call(MX87LoadControl);
        }
        else
        {
            LoadFpuWord(e, m is Mnemonic.Fnstcw or Mnemonic.Fstcw ? StateOffsets.FpuControl : StateOffsets.FpuStatus);
            il.Emit(OpCodes.Conv_U8); il.Store(e.T1);
            if (i.Op0Kind == OpKind.Register) e.StoreReg(i.Op0Register, e.T1);
            else
            {
                e.ComputeLinear();
                e.EmitWrite(2, e.T1);
            }
        }
        il.Mark(cont);
    }
}
