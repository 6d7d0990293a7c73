using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

// Leaving compiled code: direct and indirect exits, chaining through exit slots, return prediction, the shared write-back and the fault exits.
sealed unsafe partial class BlockEmitter
{
    // PERF: RyuJIT's time grows with IL size (0.25 ms per KB measured on a kernel boot), and every exit used to carry
    // its own register write-back. Exit sites now only store their RIP, retired count and kind in locals and branch to
    // one shared write-back, which then goes to the kind's tail (EmitCommonTail). Writing back every register the region
    // writes is correct on any path: all used registers are loaded at entry, so a register this path did not change
    // writes back the value it had.

    /// <summary>Before a branch to a member block: describes the pending record in <see cref="_curFlags"/>.</summary>
    void SetCurFlags(FlagOp op, int size)
    {
        if (op != DynamicFlags) DescribeFlags(op, size, _curFlags);
    }

    /// <summary>Puts a description of the pending record in <paramref name="into"/>: a plain record travels as its
    /// operation and size (the operand locals already hold it), a deferred one is flushed here and described as 0.</summary>
    void DescribeFlags(FlagOp op, int size, LocalBuilder into)
    {
        if (op == DynamicFlags) { Il.Gen.Emit(OpCodes.Ldloc, _curFlags); Il.Gen.Emit(OpCodes.Stloc, into); return; }
        int encoded = 0;
        if (op != FlagOp.None)
        {
            if ((uint)op < 0x100) encoded = (int)op | size << 8;
            else FlushFlags(op, size);
        }
        Il.ConstI4(encoded); Il.Gen.Emit(OpCodes.Stloc, into);
    }

    /// <summary>Stores the record described by <paramref name="encoded"/> (operation | size &lt;&lt; 8, 0 for none) from the
    /// flag operand locals.</summary>
    void EmitEncodedFlagsStore(LocalBuilder encoded)
    {
        var none = Il.Label();
        Il.Gen.Emit(OpCodes.Ldloc, encoded); Il.Emit(OpCodes.Brfalse, none);
        Il.StateAddress(StateOffsets.FlagOp); Il.Gen.Emit(OpCodes.Ldloc, encoded); Il.ConstI4(0xFF); Il.Emit(OpCodes.And); Il.Emit(OpCodes.Stind_I4);
        Il.StateAddress(StateOffsets.FlagSize); Il.Gen.Emit(OpCodes.Ldloc, encoded); Il.ConstI4(8); Il.Emit(OpCodes.Shr_Un); Il.Emit(OpCodes.Stind_I4);
        // FlagRes: _fres, or for a SUB record (which does not keep it) _fa - _fb, chosen without a branch.
        Il.StateAddress(StateOffsets.FlagRes);
        Il.Load(_fres);
        Il.Load(_fa); Il.Load(_fb); Il.Emit(OpCodes.Sub); Il.Load(_fres); Il.Emit(OpCodes.Sub);
        Il.Gen.Emit(OpCodes.Ldloc, encoded); Il.ConstI4(0xFF); Il.Emit(OpCodes.And); Il.ConstI4((int)FlagOp.Sub); Il.Emit(OpCodes.Ceq);
        Il.Emit(OpCodes.Conv_U8); Il.Emit(OpCodes.Neg); Il.Emit(OpCodes.And); Il.Emit(OpCodes.Add);
        Il.Emit(OpCodes.Stind_I8);
        Il.StoreState64(StateOffsets.FlagSrc1, _fa);
        Il.StoreState64(StateOffsets.FlagSrc2, _fb);
        Il.Mark(none);
    }

    /// <summary>Leaves to the dispatcher with RIP = <paramref name="rip"/> and <paramref name="retired"/> more instructions
    /// retired (on top of the retired local), storing the flag record (<paramref name="op"/>, <paramref name="size"/>).</summary>
    void ExitVia(ulong rip, int retired, FlagOp op = FlagOp.None, int size = 0)
    {
        Il.Const(rip); Il.Store(_exitRip);
        BranchToTail(TailKind.Dispatcher, retired, op, size);
        _exitTailUsed = true;
    }

    /// <summary>Leaves for the address in <paramref name="target"/> through the jump cache (indirect tail).</summary>
    void ExitIndirectVia(Local64 target, int retired, FlagOp op = FlagOp.None, int size = 0)
    {
        Il.Load(target); Il.Store(_exitRip);
        BranchToTail(TailKind.Indirect, retired, op, size);
        _indirectTailUsed = true;
    }

    void BranchToTail(TailKind kind, int retired, FlagOp op, int size)
    {
        DescribeFlags(op, size, _exitFlags);
        Il.Const((ulong)retired); Il.Store(_exitK);
        Il.ConstI4((int)kind); Il.Gen.Emit(OpCodes.Stloc, _tailKind);
        Il.Emit(OpCodes.Br, _commonTail);
    }

    /// <summary>The write-back every exit shares, then the branch to its kind's tail (no compare when the method has
    /// one kind of exit; the chain, the hottest, is tested first).</summary>
    void EmitCommonTail()
    {
        Span<(bool Used, TailKind Kind, Label Target)> kinds =
        [
            (_chainTailUsed, TailKind.Chain, _chainTail), (_rasTailUsed, TailKind.Predicted, _rasTail),
            (_indirectTailUsed, TailKind.Indirect, _indirectTail), (_exitTailUsed, TailKind.Dispatcher, _exitTail),
        ];
        int used = 0;
        foreach (var k in kinds) if (k.Used) used++;
        if (used == 0) return;
        WriteBackAtTail(_commonTail);
        foreach (var k in kinds)
        {
            if (!k.Used) continue;
            if (--used == 0) { Il.Emit(OpCodes.Br, k.Target); break; }
            Il.Gen.Emit(OpCodes.Ldloc, _tailKind); Il.ConstI4((int)k.Kind); Il.Emit(OpCodes.Beq, k.Target);
        }
    }

    /// <summary>What every exit does first: the exit site's flag record, retired count, registers and RIP into
    /// CpuState.</summary>
    void WriteBackAtTail(Label tail)
    {
        Il.Mark(tail);
        EmitEncodedFlagsStore(_exitFlags);
        EmitAddRetired(_exitK);
        WriteBack();
        Il.StoreState64(StateOffsets.Rip, _exitRip);
    }

    /// <summary>CpuState.InstructionsRetired += <paramref name="k"/> + the loop iterations counted in the local.</summary>
    void EmitAddRetired(Local64 k)
    {
        Il.StateAddress(StateOffsets.Retired);
        Il.Emit(OpCodes.Dup);
        Il.Emit(OpCodes.Ldind_I8);
        Il.Load(_retired);
        Il.Emit(OpCodes.Add);
        Il.Load(k);
        Il.Emit(OpCodes.Add);
        Il.Emit(OpCodes.Stind_I8);
    }

    void EmitSharedTails()
    {
        EmitCommonTail();
        if (_exitTailUsed)
        {
            Il.Mark(_exitTail);
            Il.Emit(OpCodes.Br, _retDispatch);
        }
        if (_indirectTailUsed)
        {
            Il.Mark(_indirectTail);
            EmitIndirectTail(_exitRip);
        }
        if (_chainTailUsed || _rasTailUsed)
        {
            var throughSlot = Il.Label();
            if (_rasTailUsed)
            {
                // A predicted return: the slot address was popped from the return stack (the caller's own slot).
                Il.Mark(_rasTail);
                EmitLeaveCheck(_retDispatch);
                if (_chainTailUsed) Il.Emit(OpCodes.Br, throughSlot);
            }
            if (_chainTailUsed)
            {
                // slot = &slots[n], then as a predicted return.
                Il.Mark(_chainTail);
                EmitLeaveCheck(_retDispatch);
                // This VM's exit slots, stored by whoever entered (dispatcher, chained jump, jump cache) and unchanged until
                // the method leaves; read here rather than held from entry, which tied up a host register for the whole body.
                Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(StateOffsets.ExitSlots); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I);
                Il.Gen.Emit(OpCodes.Ldloc, _exitSlot); Il.Emit(OpCodes.Conv_I); Il.Emit(OpCodes.Add); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
            }
            Il.Mark(throughSlot);
            EmitThroughSlot();
        }
        if (_tailJumpUsed)
        {
            Il.Mark(_tailJump);
            Il.Gen.Emit(OpCodes.Ldarg_0); Il.Gen.Emit(OpCodes.Ldarg_1); Il.Gen.Emit(OpCodes.Ldloc, _fnptr);
            Il.Emit(OpCodes.Tailcall);
            Il.Gen.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(int), [typeof(CpuCore), typeof(CpuState*)], null);
            Il.Emit(OpCodes.Ret);
        }
    }

    /// <summary>Leaves through the exit slot whose address is in _fnptr: LastExitSlot = slot; cell = *slot;
    /// ExitSlots = cell[1]; jump to cell[0] (the link stub, until the dispatcher links the slot).</summary>
    void EmitThroughSlot()
    {
        Il.StateAddress(StateOffsets.LastExitSlot); Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Stind_I);
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Ldind_I); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
        Il.StateAddress(StateOffsets.ExitSlots); Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.ConstI4(sizeof(nint)); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I); Il.Emit(OpCodes.Stind_I);
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Ldind_I); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
        JumpToFnptr();
    }

    // PERF: one `tail. calli` per method, reached from every tail with the code address in _fnptr. RyuJIT charged 20-30 us
    // of compile time for each explicit tail call site (CompileCostQuick's replay of a region's IL with them removed), and
    // a region had up to three (through a slot, a predicted return, the jump cache).
    Label _tailJump;
    bool _tailJumpUsed;

    void JumpToFnptr()
    {
        _tailJumpUsed = true;
        Il.Emit(OpCodes.Br, _tailJump);
    }

    /// <summary>Whether <paramref name="rip"/> is in the linear page of this block's start: only there may an exit slot
    /// link to a fixed successor (another page may be remapped without this block changing).</summary>
    bool InThisPage(ulong rip) => ((_b.CsBase + rip) >> 12) == ((_b.CsBase + _b.Rip) >> 12);

    /// <summary>This block's code context for return prediction: its mode and CS base (compile-time constants).</summary>
    ulong ReturnContext => _b.CsBase | (ulong)_b.Mode << 48;

    /// <summary>Address of return-stack array <paramref name="field"/>'s entry _rasTop.</summary>
    void RasEntryAddress(int field)
    {
        Il.StateAddress(field);
        Il.Gen.Emit(OpCodes.Ldloc, _rasTop); Il.Emit(OpCodes.Conv_I); Il.ConstI4(8); Il.Emit(OpCodes.Mul); Il.Emit(OpCodes.Add);
    }

    /// <summary>After a CALL's push: the return address, this code's context and (when the return address is in this
    /// block's linear page, as a direct exit's target must be) a fresh exit slot of this method for it, onto the return
    /// stack.</summary>
    internal void PushReturnPrediction(ulong returnRip)
    {
        if (!_chain) return;
        Il.LoadState32(StateOffsets.RasTop); Il.ConstI4(1); Il.Emit(OpCodes.Add); Il.ConstI4(CpuState.ReturnStackEntries - 1); Il.Emit(OpCodes.And);
        Il.Gen.Emit(OpCodes.Stloc, _rasTop);
        Il.StateAddress(StateOffsets.RasTop); Il.Gen.Emit(OpCodes.Ldloc, _rasTop); Il.Emit(OpCodes.Stind_I4);
        RasEntryAddress(StateOffsets.RasRip); Il.Const(returnRip); Il.Emit(OpCodes.Stind_I8);
        RasEntryAddress(StateOffsets.RasContext); Il.Const(ReturnContext); Il.Emit(OpCodes.Stind_I8);
        RasEntryAddress(StateOffsets.RasSlot);
        if (InThisPage(returnRip))
        {
            Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(StateOffsets.ExitSlots); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I);
            Il.ConstI4(ExitSlotCount++ * sizeof(nint)); Il.Emit(OpCodes.Conv_I); Il.Emit(OpCodes.Add);
        }
        else { Il.ConstI4(0); Il.Emit(OpCodes.Conv_I); }
        Il.Emit(OpCodes.Stind_I);
    }

    /// <summary>A RET pops the return stack; when the popped prediction is for <paramref name="target"/> in this code's
    /// context and has a slot, it leaves through that slot. Falls through otherwise.</summary>
    void EmitPredictedReturn(Local64 target, int retired, FlagOp op, int size)
    {
        if (!_chain) return;
        var miss = Il.Label();
        Il.LoadState32(StateOffsets.RasTop); Il.Gen.Emit(OpCodes.Stloc, _rasTop);
        Il.StateAddress(StateOffsets.RasTop);
        Il.Gen.Emit(OpCodes.Ldloc, _rasTop); Il.ConstI4(1); Il.Emit(OpCodes.Sub); Il.ConstI4(CpuState.ReturnStackEntries - 1); Il.Emit(OpCodes.And);
        Il.Emit(OpCodes.Stind_I4);
        RasEntryAddress(StateOffsets.RasSlot); Il.Emit(OpCodes.Ldind_I); Il.Gen.Emit(OpCodes.Stloc, _fnptr); // the tail leaves through it
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Brfalse, miss);
        RasEntryAddress(StateOffsets.RasRip); Il.Emit(OpCodes.Ldind_I8); Il.Load(target); Il.Emit(OpCodes.Bne_Un, miss);
        RasEntryAddress(StateOffsets.RasContext); Il.Emit(OpCodes.Ldind_I8); Il.Const(ReturnContext); Il.Emit(OpCodes.Bne_Un, miss);
        Il.StateAddress(StateOffsets.RasHits); Il.Emit(OpCodes.Dup); Il.Emit(OpCodes.Ldind_I8); Il.Const(1UL); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Stind_I8);
        Il.Load(target); Il.Store(_exitRip);
        BranchToTail(TailKind.Predicted, retired, op, size);
        _rasTailUsed = true;
        Il.Mark(miss);
    }

    /// <summary>Leaves the block for a known guest address: a self-loop stays in this method, anything else
    /// is chained with a tail call through a linkable exit slot.</summary>
    internal void EmitDirectExit(ulong target)
    {
        int retired = _k + 1;
        int member = RegionIndex(target);
        if (member >= 0)
        {
            // PERF: a branch inside the region stays in this method with registers in locals. Backward
            // branches (loops) check for a kick; forward ones cannot loop without passing a backward one.
            // The pending flag record stays in locals (DynamicFlags); the leave path stores it.
            var (op, size) = (_pending, _pendingSize);
            SetCurFlags(op, size);
            Il.Load(_retired); Il.Const((ulong)retired); Il.Emit(OpCodes.Add); Il.Store(_retired);
            if (member <= _bi)
            {
                var leave = Il.Label();
                EmitLeaveCheck(leave);
                Il.Emit(OpCodes.Br, _labels[member]);
                Il.Mark(leave);
                ExitVia(target, 0, op, size);
            }
            else Il.Emit(OpCodes.Br, _labels[member]);
            return;
        }
        if (!InThisPage(target))
        {
            // Another linear page may be remapped by the guest without this block changing: go through the
            // jump cache, which paging flushes, rather than a link fixed to one physical page (as QEMU does).
            Il.Const(target); Il.Store(T1);
            ExitIndirectVia(T1, retired, _pending, _pendingSize);
            return;
        }
        if (!_chain) { ExitVia(target, retired, _pending, _pendingSize); return; }
        Il.Const(target); Il.Store(_exitRip);
        Il.ConstI4(ExitSlotCount++ * sizeof(nint)); Il.Gen.Emit(OpCodes.Stloc, _exitSlot);
        BranchToTail(TailKind.Chain, retired, _pending, _pendingSize);
        _chainTailUsed = true;
    }

    /// <summary>A RET whose target is the return address of a CALL in this region branches there directly
    /// (flags already flushed). Falls through when the target is anything else.</summary>
    bool EmitReturnInsideRegion(Local64 target)
    {
        Span<bool> candidate = stackalloc bool[_blocks.Length];
        bool any = false;
        for (int n = 0; n < _blocks.Length; n++)
        {
            ref readonly var last = ref _blocks[n].Insns[^1];
            if (last.FlowControl != Iced.Intel.FlowControl.Call) continue;
            int member = RegionIndex(X86Code.NextIp(last, _blocks[n].Mode));
            if (member < 0) continue;
            candidate[member] = true;
            any = true;
        }
        if (!any) return false;
        var (op, size) = (_pending, _pendingSize);
        // PERF: the count goes to the local like a loop back-edge's; CpuState gets it when the method is left.
        Il.Load(_retired); Il.Const((ulong)(_k + 1)); Il.Emit(OpCodes.Add); Il.Store(_retired);
        SetCurFlags(op, size);
        var notMember = Il.Label();
        EmitLeaveCheck(notMember);
        for (int m = 0; m < _blocks.Length; m++)
        {
            if (!candidate[m]) continue;
            var next = Il.Label();
            Il.Load(target); Il.Const(_blocks[m].Rip); Il.Emit(OpCodes.Bne_Un, next);
            Il.Emit(OpCodes.Br, _labels[m]);
            Il.Mark(next);
        }
        // Not a known return address (or a kick): a predicted return, else any indirect exit.
        Il.Mark(notMember);
        EmitPredictedReturn(target, 0, op, size);
        ExitIndirectVia(target, 0, op, size);
        return true;
    }

    /// <summary>Branches to <paramref name="leave"/> when another thread asked this CPU to exit, or (bounded
    /// runs: deterministic scheduling) when the instruction budget of this Run is used up.</summary>
    void EmitLeaveCheck(Label leave)
    {
        // Volatile: another thread writes it, and a loop whose body stores nothing would otherwise let RyuJIT
        // hoist the load out of the loop (a `jmp $` would then never see a kick).
        BranchIfExitRequested(leave);
        if (!_bounded) return;
        Il.LoadState64(StateOffsets.Retired);
        Il.Load(_retired); Il.Emit(OpCodes.Add);
        Il.LoadState64(StateOffsets.RetireLimit);
        Il.Emit(OpCodes.Bge_Un, leave);
    }

    int RegionIndex(ulong rip)
    {
        for (int n = 0; n < _blocks.Length; n++) if (_blocks[n].Rip == rip) return n;
        return -1;
    }

    /// <summary>Leaves for the address in <paramref name="target"/> (RET, indirect JMP/CALL) through the jump cache.</summary>
    internal void EmitIndirectExit(Local64 target, bool isReturn = false)
    {
        if (isReturn && EmitReturnInsideRegion(target)) return;
        if (isReturn) EmitPredictedReturn(target, _k + 1, _pending, _pendingSize);
        ExitIndirectVia(target, _k + 1, _pending, _pendingSize);
    }

    void EmitIndirectTail(Local64 target)
    {
        EmitLeaveCheck(_retDispatch);
        if (!_chain) { Il.Emit(OpCodes.Br, _retDispatch); return; }
        Il.Gen.Emit(OpCodes.Ldarg_0); Il.Load(target); Il.Call(MIndirectTarget);
        Il.Gen.Emit(OpCodes.Stloc, _fnptr);
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr);
        Il.Emit(OpCodes.Brfalse, _retDispatch);
        JumpToFnptr();
    }

    /// <summary>Tier-0 call for an instruction not lowered inline. Returns true if it ended the block.</summary>
    bool EmitFallback()
    {
        ref readonly var i = ref Insn;
        FlushPending();
        EmitInterpretCall(_bi, _k);
        bool ends = _k == _b.Insns.Length - 1 && X86Code.EndsBlock(i);
        if (!ends) return false;
        // Not chained past STI/MOV SS/POP SS: the dispatcher runs the next instruction inside the interrupt shadow.
        if (X86Code.MayStartInterruptShadow(i)) { ExitVia(NextIp, _k + 1); return true; }
        Il.LoadState64(StateOffsets.Rip); Il.Store(T1);
        ExitIndirectVia(T1, _k + 1);
        return true;
    }

    /// <summary>An out-of-line tier-0 call for the current (lowered, not block-ending) instruction, for the cases its
    /// inline code leaves to the interpreter (SSE: a rounding mode, operand or flag the fast path does not handle, #UD,
    /// #NM, misaligned operands). The flags pending here are stored first; it rejoins at <paramref name="cont"/>.</summary>
    internal Label SlowPath(Label cont)
    {
        var slow = Il.Label();
        var (op, size) = (_pending, _pendingSize);
        int bi = _bi, k = _k;
        Il.BeforeJoin(cont, () =>
        {
            Il.Mark(slow);
            FlushFlags(op, size);
            EmitInterpretCall(bi, k);
            Il.Emit(OpCodes.Br, cont);
        });
        return slow;
    }

    /// <summary>Calls tier 0 for instruction <paramref name="k"/> of member <paramref name="bi"/> (CpuState must hold the
    /// flags; registers are written back and reloaded here) and leaves the method if it faulted or asked to stop after it.</summary>
    void EmitInterpretCall(int bi, int k)
    {
        SaveForCall(registers: true);
        Il.Gen.Emit(OpCodes.Ldarg_0); Il.Const((ulong)_handles[bi]); Il.Emit(OpCodes.Conv_I); Il.ConstI4(k); Il.ConstI4((int)_blocks[bi].Mode);
        Il.Call(MInterpret);
        Il.Gen.Emit(OpCodes.Stloc, _status);
        var stop = Il.Label();
        Il.Gen.Emit(OpCodes.Ldloc, _status);
        Il.Emit(OpCodes.Brtrue, stop);
        _outOfLine.Add(() =>
        {
            // Faulted: RIP is the faulting instruction, k retired. StopAfter: this one retired too.
            Il.Mark(stop);
            Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(StateOffsets.Retired); Il.Emit(OpCodes.Add);
            Il.Emit(OpCodes.Dup); Il.Emit(OpCodes.Ldind_I8);
            Il.Const((ulong)k);
            Il.Gen.Emit(OpCodes.Ldloc, _status); Il.ConstI4(JitHelpers.StopAfter); Il.Emit(OpCodes.Ceq); Il.Emit(OpCodes.Conv_U8);
            Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Add);
            LoadRetiredAfterCall(); Il.Emit(OpCodes.Add);
            Il.Emit(OpCodes.Stind_I8);
            Il.Emit(OpCodes.Br, _retDispatch);
        });
        RestoreAfterCall(registers: true);
    }

    static readonly MethodInfo MReadForJit = typeof(Mem).GetMethod(nameof(Mem.ReadForJit))!;
    static readonly MethodInfo MWriteForJit = typeof(Mem).GetMethod(nameof(Mem.WriteForJit))!;
    static readonly MethodInfo MInterpret = typeof(JitHelpers).GetMethod(nameof(JitHelpers.Interpret))!;
    static readonly MethodInfo MIndirectTarget = typeof(JitHelpers).GetMethod(nameof(JitHelpers.IndirectTarget))!;
    static readonly MethodInfo MCondition = typeof(JitHelpers).GetMethod(nameof(JitHelpers.Condition))!;
    static readonly MethodInfo MCarry = typeof(Flags).GetMethod(nameof(Flags.Carry))!;
    static readonly MethodInfo MCarryOfRecord = typeof(JitHelpers).GetMethod(nameof(JitHelpers.CarryOfRecord))!;
    static readonly MethodInfo MSetStatus = typeof(Flags).GetMethod(nameof(Flags.SetStatus))!;
}
