using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

// Memory operands: linear addresses, segment checks, the inline TLB and its slow paths, SMC checks.
sealed unsafe partial class BlockEmitter
{
    /// <summary>Computes the current instruction's memory operand's linear address into <see cref="Lin"/>; with
    /// <paramref name="keepOffset"/>, its offset (effective address) into <see cref="Off"/> too (x87's FDP).</summary>
    internal void ComputeLinear(bool keepOffset = false) => ComputeAddress(withSegment: true, keepOffset);

    /// <summary>The memory operand's effective address (offset, no segment base) into <see cref="Lin"/>: LEA.</summary>
    internal void ComputeEffective() => ComputeAddress(withSegment: false, keepOffset: false);

    void ComputeAddress(bool withSegment, bool keepOffset)
    {
        ref readonly var i = ref Insn;
        _stackAccess = i.MemorySegment == Register.SS;
        if (i.IsIPRelativeMemoryOperand)
        {
            Il.Const(i.MemoryBase == Register.EIP ? (uint)i.IPRelativeMemoryAddress : i.IPRelativeMemoryAddress);
        }
        else
        {
            Il.Const(i.MemoryDisplacement64);
            if (i.MemoryBase != Register.None) { LoadReg(i.MemoryBase); Il.Emit(OpCodes.Add); }
            if (i.MemoryIndex != Register.None)
            {
                LoadReg(i.MemoryIndex);
                if (i.MemoryIndexScale != 1) { Il.ConstI4(System.Numerics.BitOperations.Log2((uint)i.MemoryIndexScale)); Il.Emit(OpCodes.Shl); }
                Il.Emit(OpCodes.Add);
            }
            int asz = X86Operands.AddressSize(i);
            if (asz < 8) Il.Truncate(asz);
        }
        // Segmented code keeps the offset in Off anyway (for its limit check).
        if (keepOffset && !(withSegment && _segmented)) { Il.Emit(OpCodes.Dup); Il.Store(Off); }
        _accessSeg = -1;
        if (withSegment && _segmented)
        {
            var seg = X86Operands.SegOf(i.MemorySegment);
            Il.Store(Off);
            if (!_real) _accessSeg = (int)seg;
            Il.Load(Off);
            if (seg == SegReg.Cs) { if (_b.CsBase != 0) { Il.Const(_b.CsBase); Il.Emit(OpCodes.Add); } }
            else { Il.Load(_segBase[(int)seg]); Il.Emit(OpCodes.Add); }
            Il.Truncate(4);
        }
        else if (withSegment && i.MemorySegment is Register.FS or Register.GS)
        {
            Il.LoadState64(i.MemorySegment == Register.FS ? StateOffsets.FsBase : StateOffsets.GsBase);
            Il.Emit(OpCodes.Add);
            if (_legacy) Il.Truncate(4); // linear addresses are 32-bit outside 64-bit mode
        }
        Il.Store(Lin);
    }

    /// <summary>A string instruction's address seg:index into <see cref="Lin"/>: the index register (RSI/RDI at the code's
    /// address size) plus the FS/GS base when the source is overridden to one (other bases are 0: 64-bit mode, or flat
    /// segments vouched for at method entry).</summary>
    internal void StringLinear(Register seg, Register index)
    {
        _stackAccess = seg == Register.SS;
        LoadReg(index);
        if (seg is Register.FS or Register.GS)
        {
            Il.LoadState64(seg == Register.FS ? StateOffsets.FsBase : StateOffsets.GsBase);
            Il.Emit(OpCodes.Add);
            if (_legacy) Il.Truncate(4);
        }
        Il.Store(Lin);
    }

    /// <summary>Writes a flag record to CpuState now (inside a loop whose trip count decides which record is the last).</summary>
    internal void StoreFlagsNow(FlagOp op, int size, Local64 res, Local64 a, Local64 b)
    {
        Il.StoreState32Const(StateOffsets.FlagOp, (int)op);
        Il.StoreState32Const(StateOffsets.FlagSize, size);
        Il.StoreState64(StateOffsets.FlagRes, res);
        Il.StoreState64(StateOffsets.FlagSrc1, a);
        Il.StoreState64(StateOffsets.FlagSrc2, b);
        _pending = FlagOp.None;
    }

    /// <summary>Branches to <paramref name="leave"/> when another thread asked this CPU to exit (a long REP loop's poll).</summary>
    internal void BranchIfExitRequested(Label leave)
    {
        Il.StateAddress(StateOffsets.ExitRequest);
        Il.Emit(OpCodes.Volatile);
        Il.Emit(OpCodes.Ldind_I4);
        Il.Emit(OpCodes.Brtrue, leave);
    }

    /// <summary>Stack address [RSP + <paramref name="delta"/>] into <see cref="Lin"/> (ESP, wrapping at 4 GiB, in flat 32-bit code).</summary>
    internal void StackLinear(long delta) => StackLinear(4, delta);

    /// <summary>Stack-segment address [<paramref name="baseGpr"/> + <paramref name="delta"/>] into <see cref="Lin"/>: RSP, or RBP for
    /// LEAVE/ENTER. The offset (wrapped to the stack width) goes to <see cref="Off"/>; segmented code adds SS's base.</summary>
    internal void StackLinear(int baseGpr, long delta)
    {
        _stackAccess = true;
        Il.Load(_gpr[baseGpr]);
        if (delta != 0) { Il.Const((ulong)delta); Il.Emit(OpCodes.Add); }
        if (_stackAddr < 8) Il.Truncate(_stackAddr);
        Il.Store(Off);
        Il.Load(Off);
        _accessSeg = -1;
        if (_segmented)
        {
            if (!_real) _accessSeg = (int)SegReg.Ss;
            Il.Load(_segBase[(int)SegReg.Ss]); Il.Emit(OpCodes.Add);
            Il.Truncate(4);
        }
        Il.Store(Lin);
    }

    /// <summary>RSP = <paramref name="offset"/> at the stack width: ESP zero-extends, SP keeps the upper bits (SDM 6.2.3).</summary>
    internal void SetStackPointer(Local64 offset)
    {
        var rsp = _gpr[4];
        if (_stackAddr == 2)
        {
            Il.Load(rsp); Il.Const(~0xFFFFUL); Il.Emit(OpCodes.And);
            Il.Load(offset); Il.Const(0xFFFF); Il.Emit(OpCodes.And); Il.Emit(OpCodes.Or);
        }
        else { Il.Load(offset); if (_stackAddr == 4) Il.Truncate(4); }
        Il.Store(rsp);
    }

    /// <summary>RSP += <paramref name="delta"/> at the stack width (ESP zero-extended, SP wrapping inside RSP).</summary>
    internal void AdjustStack(long delta)
    {
        var rsp = _gpr[4];
        Il.Load(rsp); Il.Const((ulong)delta); Il.Emit(OpCodes.Add); Il.Store(_stackTmp);
        SetStackPointer(_stackTmp);
    }

    /// <summary>The segment limit check of a whole <paramref name="size"/>-byte access made of several reads or writes (each of
    /// those checks only its own bytes from the operand's offset).</summary>
    internal void CheckSegmentLimit(int size) => EmitLimitCheck(size);

    /// <summary>Segmented protected-mode code: #GP(0) (#SS(0) through SS) unless the <paramref name="size"/> bytes at
    /// <see cref="Off"/> lie inside the expand-up segment's limit (SDM Vol. 3A 5.3), before the access changes anything.</summary>
    void EmitLimitCheck(int size)
    {
        if (_accessSeg < 0) return;
        Il.Load(Off);
        if (size > 1) { Il.Const((ulong)(size - 1)); Il.Emit(OpCodes.Add); }
        Il.Load(_segLimit[_accessSeg]);
        Il.Emit(OpCodes.Bgt_Un, RaiseException(_accessSeg == (int)SegReg.Ss ? Vector.SS : Vector.GP));
    }

    /// <summary>Segmented protected-mode code: #GP(0) at the branch unless the near target <paramref name="target"/> is
    /// inside the CS limit (SDM JMP/Jcc/CALL/RET/LOOP "Protected Mode Exceptions"). Nothing to check in flat or real-mode code.</summary>
    internal void CheckBranchTarget(ulong target)
    {
        if (!_segmented || _real) return;
        Il.Const(target); Il.Load(_csLimit);
        Il.Emit(OpCodes.Bgt_Un, RaiseException(Vector.GP));
    }

    /// <inheritdoc cref="CheckBranchTarget(ulong)"/>
    internal void CheckBranchTarget(Local64 target)
    {
        if (!_segmented || _real) return;
        Il.Load(target); Il.Load(_csLimit);
        Il.Emit(OpCodes.Bgt_Un, RaiseException(Vector.GP));
    }

    // The address in Lin is through SS (stack operations, SS-based memory operands): flat 32-bit code then raises #SS,
    // not #GP, for an access past the 4 GiB limit.
    bool _stackAccess;
    int SlowPathFlags => _legacy && _stackAccess ? Mem.JitStackAccess : 0;

    /// <summary>The address of the instruction after the current one, wrapped to the code size.</summary>
    internal ulong NextIp => X86Code.NextIp(Insn, _b.Mode);

    void EmitTlbEntry(int tlbOffset)
    {
        // Entry (Lin >> 12) mod TlbEntries of 16 bytes: one shift and one mask in 64 bits. Done in int32 it cost RyuJIT a
        // zero-extension, a shift and a sign extension more on every memory access.
        Il.StateAddress(tlbOffset);
        Il.Load(Lin); Il.ConstI4(12 - 4); Il.Emit(OpCodes.Shr_Un);
        Il.Const((ulong)(CpuState.TlbEntries - 1) << 4); Il.Emit(OpCodes.And);
        Il.Emit(OpCodes.Conv_U);
        Il.Emit(OpCodes.Add);
        Il.Gen.Emit(OpCodes.Stloc, _entry);
    }

    void EmitTlbCompare(int size, Label miss)
    {
        Il.Gen.Emit(OpCodes.Ldloc, _entry); Il.Emit(OpCodes.Ldind_I8);
        Il.Load(Lin);
        if (size > 1) { Il.Const((ulong)(size - 1)); Il.Emit(OpCodes.Add); }
        Il.Const(~GuestRam.PageMask); Il.Emit(OpCodes.And);
        Il.Emit(OpCodes.Bne_Un, miss);
    }

    void EmitHostAddress()
    {
        Il.Load(Lin);
        Il.Gen.Emit(OpCodes.Ldloc, _entry); Il.ConstI4(8); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I8);
        Il.Emit(OpCodes.Add);
        Il.Emit(OpCodes.Conv_U);
    }

    /// <summary>Reads <paramref name="size"/> bytes at <see cref="Lin"/> into <see cref="Val"/>: inside the read window inline,
    /// else the TLB out of line, and its miss after that. 64-bit code probes the TLB inline instead for stack reads, and
    /// in blocks where tier 0 saw most reads fall outside the window (<see cref="Block.WindowFirst"/>).</summary>
    internal void EmitRead(int size)
    {
        EmitLimitCheck(size);
        Label slow = Il.Label(), cont = Il.Label(), fault = FaultExit();
        int slowFlags = SlowPathFlags;
        if (!_legacy && (_stackAccess || !_b.WindowFirst))
        {
            EmitTlbRead(size, slow);
            Il.BeforeJoin(cont, () => EmitReadMiss(size, slowFlags, slow, cont, fault));
            Il.Mark(cont);
            return;
        }
        // PERF: a read inside CpuState's read window (all of RAM without paging, else the last large page filled) is at a
        // fixed offset: the load depends on the address through one add, where the TLB probe put an entry load in between
        // (pointer chasing and table lookups are bound by that chain: chase-32 0.068 -> 0.055 s, crc32-32 0.29 -> 0.17 s).
        Label tlb = Il.Label();
        Il.Load(Lin); Il.LoadState64(StateOffsets.WinBase); Il.Emit(OpCodes.Sub);
        Il.LoadState64(StateOffsets.WinLimit);
        Il.Emit(OpCodes.Bge_Un, tlb);
        Il.Load(Lin); Il.LoadState64(StateOffsets.WinAddend); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Conv_U);
        Il.LoadHost(size);
        Il.Store(Val);
        Il.BeforeJoin(cont, () =>
        {
            Il.Mark(tlb);
            EmitTlbRead(size, slow);
            Il.Emit(OpCodes.Br, cont);
            EmitReadMiss(size, slowFlags, slow, cont, fault);
        });
        Il.Mark(cont);
    }

    /// <summary>A TLB hit's read into <see cref="Val"/>; a miss branches to <paramref name="miss"/>.</summary>
    void EmitTlbRead(int size, Label miss)
    {
        EmitTlbEntry(StateOffsets.TlbRead);
        EmitTlbCompare(size, miss);
        EmitHostAddress();
        Il.LoadHost(size);
        Il.Store(Val);
    }

    /// <summary>A read's TLB miss: the slow-path helper, then back to <paramref name="cont"/> or out through the fault exit.</summary>
    void EmitReadMiss(int size, int slowFlags, Label slow, Label cont, Label fault)
    {
        Il.Mark(slow);
        SaveForCall(registers: false);
        Il.Gen.Emit(OpCodes.Ldarg_0); Il.Load(Lin); Il.ConstI4(size | slowFlags);
        Il.Call(MReadForJit);
        Il.Store(Val);
        RestoreAfterCall(registers: false);
        Il.LoadState32(StateOffsets.PendingFault);
        Il.Emit(OpCodes.Brtrue, fault);
        Il.Emit(OpCodes.Br, cont);
    }

    /// <summary>Writes <paramref name="value"/> (low <paramref name="size"/> bytes) at <see cref="Lin"/>.</summary>
    internal void EmitWrite(int size, Local64 value)
    {
        EmitLimitCheck(size);
        Label slow = Il.Label(), cont = Il.Label(), fault = FaultExit();
        int slowFlags = SlowPathFlags;
        // PERF: a plain MOV store ends its instruction, so its slow path (the only way into a page holding translations)
        // leaves for a store into code itself; the main line then has no check after the store.
        bool storeEndsInstruction = Insn.Mnemonic == Mnemonic.Mov && Insn.Op0Kind == OpKind.Memory;
        Label? smcExit = storeEndsInstruction ? SmcExit() : null;
        _wroteMemory = !storeEndsInstruction;
        EmitTlbEntry(StateOffsets.TlbWrite);
        EmitTlbCompare(size, slow);
        EmitHostAddress();
        Il.Load(value);
        Il.StoreHost(size);
        Il.BeforeJoin(cont, () =>
        {
            Il.Mark(slow);
            SaveForCall(registers: false);
            Il.Gen.Emit(OpCodes.Ldarg_0); Il.Load(Lin); Il.ConstI4(size | slowFlags); Il.Load(value);
            Il.Call(MWriteForJit);
            RestoreAfterCall(registers: false);
            Il.LoadState32(StateOffsets.PendingFault);
            Il.Emit(OpCodes.Brtrue, fault);
            // A store into a page holding translations set LeaveBlock: leave after this instruction (here for a plain
            // MOV store, else EmitSmcCheck after the rest of the instruction).
            if (smcExit is { } leave) BranchIfLeaveBlock(leave);
            Il.Emit(OpCodes.Br, cont);
        });
        Il.Mark(cont);
    }

    void EmitSmcCheck()
    {
        // PERF: read from CpuState, not a local the slow path sets: only this thread sets LeaveBlock (a store into a
        // page holding translations, in a slow path or tier-0 call of this instruction), and a local set on the cold
        // path and tested on the hot one lived through whole loops, in a stack slot.
        BranchIfLeaveBlock(SmcExit());
    }

    void BranchIfLeaveBlock(Label leave)
    {
        Il.LoadState32(StateOffsets.ExitRequest); Il.ConstI4(ExitRequestBits.LeaveBlock); Il.Emit(OpCodes.And);
        Il.Emit(OpCodes.Brtrue, leave);
    }

    /// <summary>An out-of-line exit to the instruction after the current one, with the flags pending now.</summary>
    Label SmcExit()
    {
        var exit = Il.Label();
        var (op, size) = (_pending, _pendingSize);
        ulong next = X86Code.NextIp(Insn, _b.Mode);
        int retired = _k + 1;
        _outOfLine.Add(() =>
        {
            Il.Mark(exit);
            ExitVia(next, retired, op, size);
        });
        return exit;
    }

    /// <summary>An out-of-line exit that leaves state as it was before the current instruction (precise fault).</summary>
    internal Label FaultExit()
    {
        var l = Il.Label();
        var (op, size) = (_pending, _pendingSize);
        ulong ip = X86Code.IpOf(Insn, _b.Mode);
        int retired = _k;
        _outOfLine.Add(() =>
        {
            Il.Mark(l);
            ExitVia(ip, retired, op, size);
        });
        return l;
    }
}
