using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering, one file per instruction group. <see cref="CanEmit"/> is the table of what is
/// lowered inline (in every mode; the translator adds its own per-shape exclusions); everything else goes through the
/// tier-0 helper from the same block.
/// </summary>
static partial class InstEmit
{
    /// <param name="stackWidth">The code size (8, 4 or 2), which is also the stack width: PUSH/POP/CALL/RET are lowered at
    /// that size or 2 bytes (and 4 bytes in 16-bit code).</param>
    public static bool CanEmit(in Instruction i, int stackWidth)
    {
        if ((i.HasLockPrefix && !LockedLowerable(i)) || ((i.HasRepPrefix || i.HasRepnePrefix) && !IsStringOp(i))) return false;
        for (int op = 0; op < i.OpCount; op++)
        {
            switch (i.GetOpKind(op))
            {
                case OpKind.Register:
                    var r = i.GetOpRegister(op);
                    if (op == 1 && r.IsSegmentRegister() && i.Mnemonic == Mnemonic.Mov) break; // MOV r/m, Sreg reads a selector
                    if (!r.IsGPR() && !(r.IsXMM() && IsSseLowered(i.Mnemonic)) && !(r.IsST() && IsX87Lowered(i.Mnemonic))) return false;
                    break;
                case OpKind.Memory:
                    if (i.MemoryBase != Register.None && !i.MemoryBase.IsGPR() && !i.IsIPRelativeMemoryOperand) return false;
                    if (i.MemoryIndex != Register.None && !i.MemoryIndex.IsGPR()) return false;
                    if (MnemonicClass.IsFarPointer(i.MemorySize)) return false;
                    break;
            }
        }
        var entry = Table[(int)i.Mnemonic];
        return entry.Emit != null && (entry.Can == null || entry.Can(i, stackWidth));
    }

    delegate bool CanLower(in Instruction i, int stackWidth);
    delegate void Lower(BlockEmitter e, in Instruction i);

    /// <summary>One entry per mnemonic: how tier 1 lowers it, and (optionally) which forms. Lowering an instruction is
    /// one <see cref="Add"/> line here plus its emitter; anything without an entry runs as a tier-0 call.</summary>
    /// <summary><paramref name="Xmm"/>/<paramref name="X87"/>: the lowering handles XMM or x87 register operands.</summary>
    readonly record struct Lowering(Lower? Emit, CanLower? Can, bool EndsBlock, bool Xmm = false, bool X87 = false);

    static readonly Lowering[] Table = BuildTable();

    static Lowering[] BuildTable()
    {
        var t = new Lowering[MnemonicClass.Count];
        void Add(Lower emit, CanLower? can, params Mnemonic[] ms) { foreach (var m in ms) t[(int)m] = new(emit, can, false); }
        void AddExit(Lower emit, CanLower? can, params Mnemonic[] ms) { foreach (var m in ms) t[(int)m] = new(emit, can, true); }

        // Hints with no architectural effect: a prefetch never faults, whatever its address (tier 0 does the same). LFENCE
        // and SFENCE order nothing that translated code on a TSO host reorders (its guest accesses are volatile and every
        // store is an ordinary one); they had been tier-0 calls, 10k per Debian boot (Spectre v1 barriers, rdtsc_ordered).
        Add((e, in i) => { }, null, Mnemonic.Nop, Mnemonic.Prefetchnta, Mnemonic.Prefetcht0, Mnemonic.Prefetcht1, Mnemonic.Prefetcht2,
            Mnemonic.Prefetchw, Mnemonic.Endbr64, Mnemonic.Endbr32, Mnemonic.Lfence, Mnemonic.Sfence);
        Add(Mov, null, Mnemonic.Mov);
        Add(Movzx, null, Mnemonic.Movzx);
        Add(Movsx, null, Mnemonic.Movsx, Mnemonic.Movsxd);
        Add(Lea, null, Mnemonic.Lea);
        Add(Push, PushPopLowerable, Mnemonic.Push);
        Add(Pop, PushPopLowerable, Mnemonic.Pop);
        Add(Alu, null, Mnemonic.Add, Mnemonic.Sub, Mnemonic.And, Mnemonic.Or, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Test);
        Add(AdcSbb, null, Mnemonic.Adc, Mnemonic.Sbb);
        Add(Unary, null, Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not);
        Add(ShiftAny, null, Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar);
        Add(ShiftOrRotate, null, Mnemonic.Rol, Mnemonic.Ror);
        Add(ShiftDouble, null, Mnemonic.Shld, Mnemonic.Shrd);
        Add(ImulAny, null, Mnemonic.Imul);
        Add(MulWide, null, Mnemonic.Mul);
        Add(Divide, null, Mnemonic.Div, Mnemonic.Idiv);
        Add(SignExtendAccumulator, null, Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo);
        Add(Pause, null, Mnemonic.Pause);
        Add(CarryFlag, null, Mnemonic.Clc, Mnemonic.Stc, Mnemonic.Cmc);
        Add(DirectionFlag, null, Mnemonic.Cld, Mnemonic.Std);
        Add(Xchg, null, Mnemonic.Xchg);
        Add(Xadd, null, Mnemonic.Xadd);
        Add(BitTest, BitTestLowerable, Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc);
        Add(Cmpxchg, null, Mnemonic.Cmpxchg);
        Add(Cmpxchg8b, (in i, _) => i.Op0Kind == OpKind.Memory, Mnemonic.Cmpxchg8b);
        Add(Cmpxchg16b, (in i, w) => i.Op0Kind == OpKind.Memory && w == 8, Mnemonic.Cmpxchg16b);
        Add(Bswap, (in i, _) => i.Op0Register.GetSize() >= 4, Mnemonic.Bswap);
        Add(Leave, (in i, w) => LeaveOfWidth(i, w), Mnemonic.Leave);
        Add(Enter, EnterLowerable, Mnemonic.Enter);
        Add(BitScan, null, Mnemonic.Bsf, Mnemonic.Bsr);
        Add(BitCount, null, Mnemonic.Tzcnt, Mnemonic.Lzcnt, Mnemonic.Popcnt);
        Add(LahfSahf, null, Mnemonic.Lahf, Mnemonic.Sahf);
        // Not system instructions, but a kernel runs them constantly (a Debian boot made 1.3M tier-0 calls for them).
        Add(Pushf, (in i, w) => w >= 4 && StackOperandLowerable(-i.StackPointerIncrement, w), Mnemonic.Pushf, Mnemonic.Pushfd, Mnemonic.Pushfq);
        Add(Cli, null, Mnemonic.Cli);
        Add(Rdtsc, null, Mnemonic.Rdtsc, Mnemonic.Rdtscp);
        AddExit(Jmp, (in i, w) => i.Op0Kind is OpKind.NearBranch64 or OpKind.NearBranch32 or OpKind.NearBranch16
            || ((i.Op0Kind is OpKind.Register or OpKind.Memory) && (OperandSize(i, 0) == w || (w < 8 && OperandSize(i, 0) is 2 or 4))), Mnemonic.Jmp);
        AddExit(Call, NearCallOrReturnLowerable, Mnemonic.Call);
        AddExit(Ret, NearCallOrReturnLowerable, Mnemonic.Ret);
        AddExit(LoopOrJcxz, null, Mnemonic.Loop, Mnemonic.Loope, Mnemonic.Loopne, Mnemonic.Jcxz, Mnemonic.Jecxz, Mnemonic.Jrcxz);
        foreach (Mnemonic m in Enum.GetValues<Mnemonic>())
        {
            if (MnemonicClass.IsCmovcc(m)) Add(Cmovcc, null, m);
            else if (MnemonicClass.IsSetcc(m)) Add(Setcc, (in i, _) => i.ConditionCode != ConditionCode.None, m);
        }
        foreach (var m in new[] { Mnemonic.Jo, Mnemonic.Jno, Mnemonic.Jb, Mnemonic.Jae, Mnemonic.Je, Mnemonic.Jne, Mnemonic.Jbe, Mnemonic.Ja,
                     Mnemonic.Js, Mnemonic.Jns, Mnemonic.Jp, Mnemonic.Jnp, Mnemonic.Jl, Mnemonic.Jge, Mnemonic.Jle, Mnemonic.Jg })
            AddExit(Jcc, (in i, _) => i.IsJccShortOrNear, m);
        AddSse(t);
        AddSseInteger(t);
        AddX87(t);
        AddStrings(t);
        return t;
    }

    public static int OperandSize(in Instruction i, int op) => X86Operands.OpSize(i, op);

    /// <summary>Lowers one instruction. Returns true when it ended the block (it emitted the exits).</summary>
    public static bool Emit(BlockEmitter e, in Instruction i)
    {
        if (i.HasLockPrefix && IsLockedAlu(i.Mnemonic)) { LockedAlu(e, i); return false; }
        var entry = Table[(int)i.Mnemonic];
        entry.Emit!(e, i);
        return entry.EndsBlock;
    }
}
