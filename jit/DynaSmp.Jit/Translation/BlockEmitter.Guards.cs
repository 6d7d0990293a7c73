using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

// Entry guards: the segment state the code was compiled for, and the entry countdown of counted code.
sealed unsafe partial class BlockEmitter
{
    /// <summary>At method entry of segmented code: every data or stack segment the lowered code uses must be present,
    /// writable expand-up data (protected mode; real mode does no type or limit checks, as tier 0), and SS.B must give
    /// the stack width the code was compiled for; otherwise the dispatcher interprets the block. Then their bases (and,
    /// in protected mode, limits and CS's limit for branch targets) go into locals for the whole method.</summary>
    void EmitSegmentedGuard()
    {
        var fail = GuardFailure();
        for (int r = 0; r <= (int)SegReg.Gs; r++)
        {
            if ((_segsUsed & (1 << r)) == 0) continue;
            var seg = (SegReg)r;
            if (seg == SegReg.Cs) continue; // real mode only (SegmentedLowerable): the block's own CsBase
            uint big = seg == SegReg.Ss && _stackAddr == 4 ? SegmentCache.DefaultBig : 0;
            uint mask = seg == SegReg.Ss ? SegmentCache.DefaultBig : 0, want = big;
            if (!_real) { mask |= SegmentCache.Present | 8 | 4 | 2; want |= SegmentCache.Present | 2; }
            if (mask != 0)
            {
                Il.LoadState32(StateOffsets.SegmentAttributes(seg));
                Il.ConstI4((int)mask);
                Il.Emit(OpCodes.And);
                Il.ConstI4((int)want);
                Il.Emit(OpCodes.Bne_Un, fail);
            }
            _segBase[r] = Il.NewLocal();
            Il.LoadState64(StateOffsets.SegmentBase(seg)); Il.Store(_segBase[r]);
            if (_real) continue;
            _segLimit[r] = Il.NewLocal();
            Il.LoadState32(StateOffsets.SegmentLimit(seg)); Il.Emit(OpCodes.Conv_U8); Il.Store(_segLimit[r]);
        }
        if (!_real)
        {
            _csLimit = Il.NewLocal();
            Il.LoadState32(StateOffsets.SegmentLimit(SegReg.Cs)); Il.Emit(OpCodes.Conv_U8); Il.Store(_csLimit);
        }
    }

    /// <summary>A lean region counts its entries down in the word before its slot array (CpuState.ExitSlots is this
    /// VM's array on every way in); at zero it leaves before anything ran, and the dispatcher promotes it
    /// (<see cref="CompiledBlock.ExitPromote"/>).</summary>
    void EmitEntryCountdown()
    {
        var promote = Il.Label();
        // counter = ExitSlots - 8; *counter = T1 = *counter - 1; if (T1 <= 0) promote
        Il.LoadState64(StateOffsets.ExitSlots); Il.Emit(OpCodes.Conv_I); Il.ConstI4(sizeof(long)); Il.Emit(OpCodes.Sub);
        Il.Emit(OpCodes.Dup); Il.Emit(OpCodes.Ldind_I8); Il.Const(1); Il.Emit(OpCodes.Sub);
        Il.Emit(OpCodes.Dup); Il.Store(T1);
        Il.Emit(OpCodes.Stind_I8);
        Il.Load(T1); Il.Const(0); Il.Emit(OpCodes.Ble, promote);
        _outOfLine.Add(() =>
        {
            Il.Mark(promote);
            Il.ConstI4(CompiledBlock.ExitPromote);
            Il.Emit(OpCodes.Ret);
        });
    }

    /// <summary>Where an entry guard goes when the segments are not what the code was compiled for: nothing has run, and
    /// the dispatcher interprets the block (<see cref="CompiledBlock.ExitInterpret"/>).</summary>
    Label GuardFailure()
    {
        var fail = Il.Label();
        _outOfLine.Add(() =>
        {
            Il.Mark(fail);
            Il.ConstI4(CompiledBlock.ExitInterpret);
            Il.Emit(OpCodes.Ret);
        });
        return fail;
    }

    /// <summary>At method entry of flat 32-bit code: every segment the lowered code uses must still be flat (and CS
    /// must span 4 GiB, so no near branch target needs a limit check); otherwise nothing runs and the dispatcher
    /// interprets the block.</summary>
    void EmitFlatSegmentGuard()
    {
        var fail = GuardFailure();
        int segs = _segsUsed | 1 << (int)SegReg.Cs;
        for (int r = 0; r <= (int)SegReg.Gs; r++)
        {
            if ((segs & (1 << r)) == 0) continue;
            var seg = (SegReg)r;
            if (seg is not (SegReg.Fs or SegReg.Gs or SegReg.Cs))
            {
                Il.LoadState64(StateOffsets.SegmentBase(seg));
                Il.Emit(OpCodes.Brtrue, fail);
            }
            Il.LoadState32(StateOffsets.SegmentLimit(seg));
            Il.ConstI4(-1);
            Il.Emit(OpCodes.Bne_Un, fail);
            if (seg == SegReg.Cs) continue;
            // Present, data (type bit 3 clear), expand-up (bit 2 clear), writable (bit 1); SS also 32-bit (B).
            uint want = SegmentCache.Present | 2 | (seg == SegReg.Ss ? SegmentCache.DefaultBig : 0);
            Il.LoadState32(StateOffsets.SegmentAttributes(seg));
            Il.ConstI4((int)(want | 8 | 4));
            Il.Emit(OpCodes.And);
            Il.ConstI4((int)want);
            Il.Emit(OpCodes.Bne_Un, fail);
        }
    }
}
