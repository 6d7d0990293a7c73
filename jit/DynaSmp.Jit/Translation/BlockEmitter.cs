using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Instructions;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Emits one block. Guest registers live in IL locals (loaded once at entry, written back at exits and
/// before tier-0 calls); the last flag-producing operation is tracked at compile time, so flags nobody
/// reads are never computed and CMP/TEST/SUB + Jcc becomes one compare-and-branch.
/// </summary>
sealed unsafe partial class BlockEmitter
{
    internal readonly Il Il;
    readonly Block[] _blocks;
    readonly nint[] _handles;
    readonly bool _chain, _bounded, _counted;
    // Direct exits that own a slot (indexes into the entering block's CpuState.ExitSlots array).
    internal int ExitSlotCount;
    readonly Local64[] _gpr = new Local64[16];
    readonly bool[] _used = new bool[16];
    readonly bool[] _written = new bool[16];
    readonly bool[][] _native;
    readonly uint[][] _live;
    readonly Label[] _labels;
    readonly List<Action> _outOfLine = new();

    // Compile-time lazy-flag state: None means CpuState holds the flags (always so at block labels).
    FlagOp _pending;
    int _pendingSize;
    Local64 _fres, _fa, _fb;
    // Instructions retired by loop iterations inside this method, added to CpuState at every exit.
    Local64 _retired;
    internal Local64 Lin, Val, T1, T2, T3, T4;
    /// <summary>The offset (effective address, or stack offset) of the last address computed into <see cref="Lin"/>.</summary>
    internal Local64 Off;
    readonly InstructionInfoFactory _info = new();
    LocalBuilder _entry = null!, _status = null!, _fnptr = null!;
    Label _retDispatch;

    // Shared exit tails (see ExitVia): each exit site sets these and branches to one copy of the write-back code.
    // PERF: every exit stores its kind and branches to one write-back (flags, retired count, registers, RIP), which then
    // dispatches on the kind; a write-back per kind was most of a small region's IL, and RyuJIT's time grows with IL.
    enum TailKind { Chain, Predicted, Indirect, Dispatcher }
    Label _commonTail, _exitTail, _chainTail, _indirectTail, _rasTail;
    bool _exitTailUsed, _chainTailUsed, _indirectTailUsed, _rasTailUsed;
    LocalBuilder _tailKind = null!;
    Local64 _exitRip, _exitK;
    LocalBuilder _exitSlot = null!, _exitFlags = null!, _rasTop = null!;

    /// <summary>Compile-time flag state of a member block's entry: the record is in the flag operand locals, described at
    /// run time by <see cref="_curFlags"/> (0: it is in CpuState), because the predecessors differ.</summary>
    /// <remarks>PERF: every branch between members used to store the five-field record to CpuState unless the target
    /// overwrote the flags before it could fault; a loop whose head loads memory paid five stores per iteration. Now a
    /// branch sets one int local, and only a flag reader or an exit in the target stores the record.</remarks>
    const FlagOp DynamicFlags = (FlagOp)0xFF;
    LocalBuilder _curFlags = null!;
    Block _b;   // the block being emitted
    int _bi;    // its index in the region
    // Outside 64-bit mode. Flat 32-bit code (CS base 0, not _segmented) is compiled for flat segments (base 0, 4 GiB
    // limit, writable expand-up data; FS/GS may have a base, added per access), checked once at method entry, so no
    // access needs a limit or type check. Any segment load ends its block, so the check holds for the whole method.
    readonly bool _legacy;
    // Real mode, 16-bit code, a CS base other than 0, or 32-bit code whose flat guard failed (Block.Segmented): every
    // linear address adds the segment's base and, in protected mode, every access checks its limit. Bases and limits
    // are loaded into locals once at entry, after a guard has vouched for the attributes (writable expand-up data, the
    // SS.B the code's stack width assumes); the same segment-load-ends-the-block rule keeps them valid.
    readonly bool _segmented, _real;
    readonly int _stackAddr;            // bytes of stack pointer: 8, 4 (ESP) or 2 (SP, wrapping at 64 KiB)
    readonly Local64[] _segBase = new Local64[6], _segLimit = new Local64[6];
    Local64 _csLimit, _stackTmp;
    int _accessSeg = -1;                // SegReg of the offset in Off when its limit is checked, else -1
    int _segsUsed;  // bit per SegReg the lowered instructions access
    int _k;     // the instruction's index in it
    bool _wroteMemory;

    public BlockEmitter(Il il, Block[] region, bool chain, bool bounded, nint[] handles, bool counted = false)
    {
        Il = il; _blocks = region; _handles = handles; _b = region[0];
        _chain = chain; _bounded = bounded; _counted = counted;
        var mode = region[0].Mode;
        _legacy = (mode & ExecMode.SizeMask) != ExecMode.Code64;
        _real = (mode & ExecMode.Real) != 0;
        _segmented = IsSegmented(region[0]);
        _stackAddr = !_legacy ? 8 : (mode & ExecMode.SizeMask) == ExecMode.Code32 ? 4 : 2;
        _native = new bool[region.Length][];
        _live = new uint[region.Length][];
        _labels = new Label[region.Length];
    }

    /// <summary>Whether <paramref name="head"/>'s region is compiled with per-access segment bases and limits (see
    /// _segmented) rather than for flat segments; part of the shared-code key.</summary>
    internal static bool IsSegmented(Block head) =>
        (head.Mode & ExecMode.SizeMask) != ExecMode.Code64
        && (head.Segmented || (head.Mode & (ExecMode.SizeMask | ExecMode.Real)) != ExecMode.Code32 || head.CsBase != 0);

    internal ref readonly Instruction Insn => ref _b.Insns[_k];
    internal bool Is64 => (_b.Mode & ExecMode.SizeMask) == ExecMode.Code64;
    /// <summary>Bytes a PUSH/POP of the default size moves: the code size (RSP, ESP, or SP in 16-bit code, whose SS.B
    /// the entry guard checks).</summary>
    internal int StackWidth => _stackAddr;

    public void Emit()
    {
        for (int n = 0; n < _blocks.Length; n++) Analyse(n);
        for (int r = 0; r < 16; r++) if (_used[r]) _gpr[r] = Il.NewLocal();
        _fres = Il.NewLocal(); _fa = Il.NewLocal(); _fb = Il.NewLocal(); _fc = Il.NewLocal(); _retired = Il.NewLocal();
        Lin = Il.NewLocal(); Val = Il.NewLocal(); T1 = Il.NewLocal(); T2 = Il.NewLocal(); T3 = Il.NewLocal(); T4 = Il.NewLocal();
        _entry = Il.NewNativeLocal(); _status = Il.NewIntLocal(); _fnptr = Il.NewNativeLocal();
        _retDispatch = Il.Label(); _tailJump = Il.Label();
        _exitTail = Il.Label(); _chainTail = Il.Label(); _indirectTail = Il.Label(); _rasTail = Il.Label(); _commonTail = Il.Label();
        _tailKind = Il.NewIntLocal();
        _exitRip = Il.NewLocal(); _exitK = Il.NewLocal(); _exitSlot = Il.NewIntLocal(); _exitFlags = Il.NewIntLocal(); _rasTop = Il.NewIntLocal(); _curFlags = Il.NewIntLocal();
        for (int n = 0; n < _blocks.Length; n++) _labels[n] = Il.Label();
        PlanLoopSpills();

        Off = Il.NewLocal(); _stackTmp = Il.NewLocal();
        if (_segmented) EmitSegmentedGuard();
        else if (_legacy) EmitFlatSegmentGuard();
        if (_counted) EmitEntryCountdown();
        ReloadUsed();
        Il.ConstI4(0); Il.Gen.Emit(OpCodes.Stloc, _curFlags);
        for (_bi = 0; _bi < _blocks.Length; _bi++)
        {
            _b = _blocks[_bi];
            _pending = DynamicFlags;
            FpuGuard = 0;
            Il.Mark(_labels[_bi]);
            var insns = _b.Insns;
            bool terminated = false;
            for (_k = 0; _k < insns.Length; _k++)
            {
                _wroteMemory = false;
                if (_native[_bi][_k])
                {
                    terminated = InstEmit.Emit(this, insns[_k]);
                    if (_wroteMemory && !terminated) EmitSmcCheck();
                }
                else { terminated = EmitFallback(); FpuGuard = 0; } // a tier-0 call may change CR0/CR4 (CLTS, MOV CR0)
                if (terminated) break;
            }
            if (!terminated) { _k = insns.Length - 1; EmitDirectExit(X86Code.NextIp(insns[^1], _b.Mode)); } // length cap or page end
        }

        Il.EmitPendingJoins();
        for (int n = 0; n < _outOfLine.Count; n++) _outOfLine[n]();
        EmitSharedTails();
        // Last, so that every branch to it goes forward (see Il.BeforeJoin for why that matters).
        Il.Mark(_retDispatch);
        Il.ConstI4(CompiledBlock.ExitDispatch);
        Il.Emit(OpCodes.Ret);
    }
}
