using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Instructions;
using DynaSmp.Jit.Memory;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

/// <summary>Lowers a decoded <see cref="Block"/> to a DynamicMethod (tier 1).</summary>
public static unsafe class BlockTranslator
{
    static readonly Type[] Params = [typeof(CpuCore), typeof(CpuState*)];

    /// <summary>Most blocks one region may hold; keeps IL (and RyuJIT time) bounded.</summary>
    public const int MaxRegionBlocks = 16;

    public static CompiledBlock Translate(CpuCore core, Block b)
    {
        bool full = b.FullRegion;
        return Translate(core, FormRegion(core.Cache, b, full), counted: !full);
    }

    /// <summary>Compiles <paramref name="region"/> (head first) into one method, or reuses the method another VM
    /// compiled from the same instructions (<see cref="SharedTranslations"/>); the returned block is this VM's own.</summary>
    /// <param name="counted">The code counts its entries down from <see cref="CompiledBlock.PromoteAfter"/> and asks
    /// for a full region when they run out (a lean region: see <see cref="FormRegion"/>).</param>
    public static CompiledBlock Translate(CpuCore core, Block[] region, bool counted = false)
    {
        bool chain = Chains(core), bounded = core.Options.BoundedRuns;
        return new CompiledBlock(SharedTranslations.GetOrCompile(region, chain, bounded, counted, () => Compile(region, chain, bounded, counted)));
    }

    /// <summary>This VM's block for a region some VM already compiled from the same instructions, or null: no RyuJIT.</summary>
    public static CompiledBlock? TryShared(CpuCore core, Block[] region, bool counted) =>
        SharedTranslations.Find(region, Chains(core), core.Options.BoundedRuns, counted) is { } code ? new CompiledBlock(code) : null;

    static bool Chains(CpuCore core) => core.Options.Chaining && CompiledBlock.FunctionPointersAvailable;

    /// <summary>IL size past which a region is compiled in halves. RyuJIT compiles a method with more than 60,000 IL bytes,
    /// 20,000 IL instructions or 8,000 local-variable references with MinOpts (no register allocation, no inlining): an
    /// SSE-heavy nbody region of 215 instructions was 68 KB of IL, and one of 49 KB was over the other limits.</summary>
    internal const int MaxRegionIlBytes = 24_000;

    static SharedCode Compile(Block[] region, bool chain, bool bounded, bool counted)
    {
        long knobStart = TranslatorTestKnob.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        var head = region[0];
        if (DumpRip != null && head.Rip.ToString("x") == DumpRip) Dump(region);
        var method = new DynamicMethod($"blk_{head.Rip:x}_{(int)head.Mode}_{region.Length}", typeof(int), Params, typeof(BlockTranslator).Module, skipVisibility: true);
        var handles = new GCHandle[region.Length];
        var raw = new nint[region.Length];
        // Handles to the members' instruction arrays, not to the Blocks: shared code must not keep a VM alive.
        for (int n = 0; n < region.Length; n++) { handles[n] = GCHandle.Alloc(region[n].Insns, GCHandleType.Normal); raw[n] = GCHandle.ToIntPtr(handles[n]); }
        var emitter = new BlockEmitter(new Il(method.GetILGenerator()), region, chain, bounded, raw, counted);
        emitter.Emit();
        int ilBytes = method.GetILGenerator().ILOffset;
        if (ilBytes > MaxRegionIlBytes && region.Length > 1)
        {
            // Past RyuJIT's MinOpts limits the whole region would run unoptimised: compile the head's nearer half instead
            // (a prefix of the breadth-first members is a region; branches to the rest become exits).
            foreach (var h in handles) h.Free();
            return Compile(region[..(region.Length / 2)], chain, bounded, counted);
        }
        var fn = method.CreateDelegate<BlockFn>();
        nint entry = chain ? CompiledBlock.EntryOf(method) : 0;
        if (entry == 0) System.Runtime.CompilerServices.RuntimeHelpers.PrepareDelegate(fn);
        if (TranslatorTestKnob.Enabled) TranslatorTestKnob.Stall(knobStart);
        return new SharedCode(method, fn, entry, emitter.ExitSlotCount, handles, region.Length, ilBytes, counted);
    }

    /// <summary>DYNASMP_DUMP_REGION=HEX: the guest instructions of the region whose head is at that RIP, on stderr when it
    /// is compiled, to read beside the host code of <c>blk_HEX_*</c> (DOTNET_JitDisasm) or a perf profile.</summary>
    static readonly string? DumpRip = Environment.GetEnvironmentVariable("DYNASMP_DUMP_REGION")?.ToLowerInvariant().TrimStart('0', 'x');

    static void Dump(Block[] region)
    {
        var text = new System.Text.StringBuilder();
        var formatter = new Iced.Intel.NasmFormatter();
        var output = new Iced.Intel.StringOutput();
        foreach (var b in region)
        {
            text.Append($"block {b.Rip:x}:\n");
            foreach (var i in b.Insns)
            {
                formatter.Format(i, output);
                text.Append($"  {i.IP:x}  {output.ToStringAndReset()}\n");
            }
        }
        Console.Error.Write(text.ToString());
    }

    /// <summary>
    /// The head plus the already-decoded blocks it reaches through direct branches without leaving its page,
    /// breadth first. Branches between members become IL branches, so a loop spanning several blocks keeps
    /// its registers in locals. One page only: invalidating that page invalidates the head and the region.
    /// A lean region (the first compile of a head) leaves out blocks compiled or queued on their own and exits to them
    /// instead; a full one (<see cref="Block.FullRegion"/>, once the code proved hot) takes them in again.
    /// </summary>
    /// <remarks>PERF: with every region full, a Debian kernel boot compiled each block into about six regions (3,900
    /// regions, 25,000 member compilations, 7.5 s of RyuJIT on the compile thread); lean first regions took 4.0 s and cut
    /// the blocks interpreted while waiting from 23M to 13M. Lean regions alone split hot loops across methods (the
    /// workloads ran 1.1-2.8x slower), hence the promotion to a full region; with it, 6.1 s and 17.5M.</remarks>
    public static Block[] FormRegion(BlockCache cache, Block head, bool full)
    {
        if (head.Page1 != ulong.MaxValue || !cache.Regions) return [head];
        var members = new List<Block> { head };
        ulong headLin = head.CsBase + head.Rip;
        Span<ulong> targets = stackalloc ulong[2];
        for (int n = 0; n < members.Count && members.Count < MaxRegionBlocks; n++)
        {
            var m = members[n];
            ref readonly var last = ref m.Insns[^1];
            int count = 0;
            if (last.FlowControl is Iced.Intel.FlowControl.ConditionalBranch or Iced.Intel.FlowControl.UnconditionalBranch or Iced.Intel.FlowControl.Call
                && last.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
                targets[count++] = last.NearBranchTarget;
            // After a CALL, the return address: a RET in the region can then branch to it directly.
            if (last.FlowControl is Iced.Intel.FlowControl.ConditionalBranch or Iced.Intel.FlowControl.Next or Iced.Intel.FlowControl.Call)
                targets[count++] = CpuCore.NextIp(last, m.Mode);
            for (int t = 0; t < count && members.Count < MaxRegionBlocks; t++)
            {
                ulong rip = targets[t];
                ulong lin = head.CsBase + rip;
                if ((lin >> 12) != (headLin >> 12) || Contains(members, rip)) continue;
                ulong phys = (head.Phys & ~GuestRam.PageMask) | (lin & GuestRam.PageMask);
                var b = cache.Find(phys, head.Mode, head.CsBase, rip);
                if (b == null || b.Page1 != ulong.MaxValue || b.Page0 != head.Page0) continue;
                if (!full && (b.Compiled != null || Volatile.Read(ref b.TierUpQueued) != 0)) continue;
                members.Add(b);
            }
        }
        return members.ToArray();
    }

    static bool Contains(List<Block> blocks, ulong rip)
    {
        foreach (var b in blocks) if (b.Rip == rip) return true;
        return false;
    }
}

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
    LocalBuilder _entry = null!, _smc = null!, _status = null!, _fnptr = null!;
    Label _retDispatch;

    // Shared exit tails (see ExitVia): each exit site sets these and branches to one copy of the write-back code.
    // PERF: every exit stores its kind and branches to one write-back (flags, retired count, registers, RIP), which then
    // dispatches on the kind; a write-back per kind was most of a small region's IL, and RyuJIT's time grows with IL.
    enum TailKind { Chain, Predicted, Indirect, Dispatcher }
    Label _commonTail, _exitTail, _chainTail, _indirectTail, _rasTail;
    bool _exitTailUsed, _chainTailUsed, _indirectTailUsed, _rasTailUsed;
    LocalBuilder _tailKind = null!;
    Local64 _exitRip, _exitK;
    LocalBuilder _exitSlot = null!, _exitFlags = null!, _rasTop = null!, _rasSlot = null!;

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
        _entry = Il.NewNativeLocal(); _smc = Il.NewIntLocal(); _status = Il.NewIntLocal(); _fnptr = Il.NewNativeLocal();
        _retDispatch = Il.Label();
        _exitTail = Il.Label(); _chainTail = Il.Label(); _indirectTail = Il.Label(); _rasTail = Il.Label(); _commonTail = Il.Label();
        _tailKind = Il.NewIntLocal();
        _exitRip = Il.NewLocal(); _exitK = Il.NewLocal(); _exitSlot = Il.NewIntLocal(); _exitFlags = Il.NewIntLocal(); _rasTop = Il.NewIntLocal(); _rasSlot = Il.NewNativeLocal(); _curFlags = Il.NewIntLocal();
        for (int n = 0; n < _blocks.Length; n++) _labels[n] = Il.Label();

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
            if (!terminated) { _k = insns.Length - 1; EmitDirectExit(CpuCore.NextIp(insns[^1], _b.Mode)); } // length cap or page end
        }

        Il.Mark(_retDispatch);
        Il.ConstI4(CompiledBlock.ExitDispatch);
        Il.Emit(OpCodes.Ret);
        for (int n = 0; n < _outOfLine.Count; n++) _outOfLine[n]();
        EmitSharedTails();
    }

    // PERF: RyuJIT's time grows with IL size (0.25 ms per KB measured on a kernel boot), and every exit used to carry
    // its own register write-back. Exit sites now only store their RIP, retired count and kind in locals and branch to
    // one shared write-back, which then goes to the kind's tail (EmitCommonTail). Writing back every register the region writes is correct on any path: all used registers
    // are loaded at entry, so a register this path did not change writes back the value it had.

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
        Il.StoreState64(StateOffsets.FlagRes, _fres);
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
        if (_chainTailUsed)
        {
            // slot = &slots[n]; LastExitSlot = slot; cell = *slot; ExitSlots = cell[1]; tail-call cell[0].
            Il.Mark(_chainTail);
            EmitLeaveCheck(_retDispatch);
            // This VM's exit slots, stored by whoever entered (dispatcher, chained jump, jump cache) and unchanged until
            // the method leaves; read here rather than held from entry, which tied up a host register for the whole body.
            Il.Gen.Emit(OpCodes.Ldarg_1); Il.ConstI4(StateOffsets.ExitSlots); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I);
            Il.Gen.Emit(OpCodes.Ldloc, _exitSlot); Il.Emit(OpCodes.Conv_I); Il.Emit(OpCodes.Add); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
            EmitThroughSlot();
        }
        if (_rasTailUsed)
        {
            // A predicted return: the slot address was popped from the return stack (the caller's own slot).
            Il.Mark(_rasTail);
            EmitLeaveCheck(_retDispatch);
            Il.Gen.Emit(OpCodes.Ldloc, _rasSlot); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
            EmitThroughSlot();
        }
    }

    /// <summary>Leaves through the exit slot whose address is in _fnptr: LastExitSlot = slot; cell = *slot;
    /// ExitSlots = cell[1]; tail-call cell[0] (the link stub, until the dispatcher links the slot).</summary>
    void EmitThroughSlot()
    {
        Il.StateAddress(StateOffsets.LastExitSlot); Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Stind_I);
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Ldind_I); Il.Gen.Emit(OpCodes.Stloc, _fnptr);
        Il.StateAddress(StateOffsets.ExitSlots); Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.ConstI4(sizeof(nint)); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Ldind_I); Il.Emit(OpCodes.Stind_I);
        Il.Gen.Emit(OpCodes.Ldarg_0); Il.Gen.Emit(OpCodes.Ldarg_1);
        Il.Gen.Emit(OpCodes.Ldloc, _fnptr); Il.Emit(OpCodes.Ldind_I);
        EmitTailCall();
    }

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
        if (((_b.CsBase + returnRip) >> 12) == ((_b.CsBase + _b.Rip) >> 12))
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
        RasEntryAddress(StateOffsets.RasSlot); Il.Emit(OpCodes.Ldind_I); Il.Gen.Emit(OpCodes.Stloc, _rasSlot);
        Il.Gen.Emit(OpCodes.Ldloc, _rasSlot); Il.Emit(OpCodes.Brfalse, miss);
        RasEntryAddress(StateOffsets.RasRip); Il.Emit(OpCodes.Ldind_I8); Il.Load(target); Il.Emit(OpCodes.Bne_Un, miss);
        RasEntryAddress(StateOffsets.RasContext); Il.Emit(OpCodes.Ldind_I8); Il.Const(ReturnContext); Il.Emit(OpCodes.Bne_Un, miss);
        Il.StateAddress(StateOffsets.RasHits); Il.Emit(OpCodes.Dup); Il.Emit(OpCodes.Ldind_I8); Il.Const(1UL); Il.Emit(OpCodes.Add); Il.Emit(OpCodes.Stind_I8);
        Il.Load(target); Il.Store(_exitRip);
        BranchToTail(TailKind.Predicted, retired, op, size);
        _rasTailUsed = true;
        Il.Mark(miss);
    }

    /// <summary>Decides which instructions are lowered inline, which registers they use, and flag liveness.</summary>
    void Analyse(int bi)
    {
        var b = _blocks[bi];
        var insns = b.Insns;
        bool is64 = (b.Mode & ExecMode.SizeMask) == ExecMode.Code64;
        var native = _native[bi] = new bool[insns.Length];
        var liveAfter = _live[bi] = new uint[insns.Length];
        for (int k = 0; k < insns.Length; k++)
        {
            ref readonly var i = ref insns[k];
            native[k] = (is64 || (_segmented ? SegmentedLowerable(i) : FlatLowerable(i))) && InstEmit.CanEmit(i, _stackAddr);
            if (!native[k]) continue;
            if (_legacy)
            {
                if (InstEmit.HasMemory(i) && !InstEmit.NeverAccessesMemory(i)) _segsUsed |= 1 << (int)Interpreter.Interp.SegOf(i.MemorySegment);
                if (InstEmit.IsStringOp(i)) _segsUsed |= 1 << (int)SegReg.Es | 1 << (int)Interpreter.Interp.SegOf(i.MemorySegment);
                if (i.StackPointerIncrement != 0 || i.Mnemonic is Mnemonic.Leave or Mnemonic.Enter) _segsUsed |= 1 << (int)SegReg.Ss;
            }
            // Every GPR the instruction reads or writes, implicit ones included (MUL's EDX, LEAVE's EBP, XCHG's second operand).
            foreach (var u in _info.GetInfo(i).GetUsedRegisters())
                if (u.Register.IsGPR())
                    Use(u.Register, write: u.Access is OpAccess.Write or OpAccess.ReadWrite or OpAccess.CondWrite or OpAccess.ReadCondWrite);
            if (i.StackPointerIncrement != 0) { _used[4] = true; _written[4] = true; }
        }
        // Backward pass: a flag is live after k if some later instruction reads it before all writers.
        // Block ends (and tier-0 calls) count as reading every flag.
        const uint all = (uint)(RflagsBits.OF | RflagsBits.SF | RflagsBits.ZF | RflagsBits.AF | RflagsBits.CF | RflagsBits.PF);
        uint live = all;
        for (int k = insns.Length - 1; k >= 0; k--)
        {
            liveAfter[k] = live;
            ref readonly var i = ref insns[k];
            // An instruction that can fault must find the flags of before it in CpuState when it does (precise
            // exceptions), so it keeps every flag live up to it; recording them costs three local moves.
            live = native[k] ? (live & ~Kills(i)) | (uint)i.RflagsRead | (CanFault(i) ? all : 0) : all;
        }
    }

    /// <summary>Lowered instructions that may raise an exception: memory and stack accesses (LEAVE reads the stack
    /// through RBP), DIV/IDIV (#DE), and the SSE and x87 forms, whose tier-0 path raises #NM, #UD, #XM or #MF.</summary>
    static bool CanFault(in Instruction i) =>
        (InstEmit.HasMemory(i) && !InstEmit.NeverAccessesMemory(i)) || InstEmit.IsStringOp(i) || i.StackPointerIncrement != 0
        || i.Mnemonic is Mnemonic.Div or Mnemonic.Idiv or Mnemonic.Leave || InstEmit.IsSseLowered(i.Mnemonic)
        || InstEmit.IsX87Lowered(i.Mnemonic);

    /// <summary>Flags an instruction always overwrites. A shift or rotate by CL writes none when CL masks to 0, so it
    /// kills nothing: the flags before it stay live through it.</summary>
    static uint Kills(in Instruction i)
    {
        if (!Interpreter.MnemonicClass.IsShiftOrRotate(i.Mnemonic)) return (uint)i.RflagsModified;
        if (i.GetOpKind(i.OpCount - 1) == OpKind.Register) return 0; // by CL
        return InstEmit.MaskedImmediateCount(i) == 0 ? 0 : (uint)i.RflagsModified;
    }

    /// <summary>What flat 32-bit lowering leaves to tier 0 beyond the table's own form checks: CS-relative data
    /// (an execute-only code segment may not be read, and the entry check only vouches for data segments).</summary>
    static bool FlatLowerable(in Instruction i) => !(InstEmit.HasMemory(i) && i.MemorySegment == Register.CS);

    /// <summary>What segmented lowering leaves to tier 0: CS-relative data outside real mode (as flat), and the forms
    /// whose accesses do not go through one limit-checked offset (strings, which step two indexes; a memory BT* with a
    /// register bit offset, which moves the address; SSE memory operands, read as two halves).</summary>
    bool SegmentedLowerable(in Instruction i)
    {
        bool mem = InstEmit.HasMemory(i);
        if (mem && i.MemorySegment == Register.CS && !_real) return false;
        if (InstEmit.IsStringOp(i) || (mem && InstEmit.IsSseLowered(i.Mnemonic))) return false;
        return !(i.Mnemonic is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && i.Op0Kind == OpKind.Memory && i.Op1Kind == OpKind.Register);
    }

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

    void Use(Register r, bool write)
    {
        int idx = Interpreter.Interp.GprIndex(r, out _);
        if ((uint)idx >= 16) return;
        _used[idx] = true;
        if (write) _written[idx] = true;
    }

    internal bool FlagsLiveAfter => _live[_bi][_k] != 0;
    internal bool CfLiveAfter => (_live[_bi][_k] & (uint)RflagsBits.CF) != 0;

    void ReloadUsed()
    {
        for (int r = 0; r < 16; r++)
        {
            if (!_used[r]) continue;
            Il.LoadState64(StateOffsets.GprAt(r));
            Il.Store(_gpr[r]);
        }
    }

    void WriteBack()
    {
        for (int r = 0; r < 16; r++)
            if (_written[r]) Il.StoreState64(StateOffsets.GprAt(r), _gpr[r]);
    }

    // ---- registers -------------------------------------------------------------------------------

    internal void LoadReg(Register r)
    {
        int idx = Interpreter.Interp.GprIndex(r, out int shift);
        Il.Load(_gpr[idx]);
        if (shift != 0) { Il.ConstI4(shift); Il.Emit(OpCodes.Shr_Un); }
        Il.Truncate(r.GetSize());
    }

    /// <summary>Writes a guest register with x86 width rules (32-bit zero-extends, 8/16-bit merge).</summary>
    internal void StoreReg(Register r, Local64 v)
    {
        int idx = Interpreter.Interp.GprIndex(r, out int shift);
        var g = _gpr[idx];
        switch (r.GetSize())
        {
            case 8: Il.Load(v); break;
            case 4: Il.Load(v); Il.Truncate(4); break;
            case 2:
                Il.Load(g); Il.Const(~0xFFFFUL); Il.Emit(OpCodes.And);
                Il.Load(v); Il.Const(0xFFFF); Il.Emit(OpCodes.And); Il.Emit(OpCodes.Or);
                break;
            default:
                Il.Load(g); Il.Const(~(0xFFUL << shift)); Il.Emit(OpCodes.And);
                Il.Load(v); Il.Const(0xFF); Il.Emit(OpCodes.And);
                if (shift != 0) { Il.ConstI4(shift); Il.Emit(OpCodes.Shl); }
                Il.Emit(OpCodes.Or);
                break;
        }
        Il.Store(g);
    }

    internal Local64 GprLocal(int index) => _gpr[index];

    Local64? _outA, _outB;

    /// <summary>Locals for a helper's out parameters (address-taken, so RyuJIT keeps them in memory). Never the shared
    /// temporaries: taking T1's address once made every use of T1 in the method a stack access.</summary>
    internal Local64 OutA => _outA ??= Il.NewLocal();
    internal Local64 OutB => _outB ??= Il.NewLocal();

    /// <summary>What the FP guards emitted so far in this block have checked on every path past them: 0 nothing, 1 CR0.EM
    /// and CR0.TS clear (x87), 2 also CR4.OSFXSR set (SSE). Only a tier-0 call can change CR0 or CR4 inside a block, so a
    /// later FP instruction of the block needs no guard of its own (an SSE loop body had two loads and branches per
    /// instruction for it).</summary>
    internal int FpuGuard;

    // ---- memory ----------------------------------------------------------------------------------

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
            int asz = Interpreter.Interp.AddressSize(i);
            if (asz < 8) Il.Truncate(asz);
        }
        // Segmented code keeps the offset in Off anyway (for its limit check).
        if (keepOffset && !(withSegment && _segmented)) { Il.Emit(OpCodes.Dup); Il.Store(Off); }
        _accessSeg = -1;
        if (withSegment && _segmented)
        {
            var seg = Interpreter.Interp.SegOf(i.MemorySegment);
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
    internal ulong NextIp => CpuCore.NextIp(Insn, _b.Mode);

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

    /// <summary>Reads <paramref name="size"/> bytes at <see cref="Lin"/> into <see cref="Val"/>: TLB hit inline, miss out of line.</summary>
    internal void EmitRead(int size)
    {
        EmitLimitCheck(size);
        Label slow = Il.Label(), cont = Il.Label(), fault = FaultExit();
        int slowFlags = SlowPathFlags;
        EmitTlbEntry(StateOffsets.TlbRead);
        EmitTlbCompare(size, slow);
        EmitHostAddress();
        Il.LoadHost(size);
        Il.Store(Val);
        Il.Mark(cont);
        _outOfLine.Add(() =>
        {
            Il.Mark(slow);
            Il.Gen.Emit(OpCodes.Ldarg_0); Il.Load(Lin); Il.ConstI4(size | slowFlags);
            Il.Call(MReadForJit);
            Il.Store(Val);
            Il.LoadState32(StateOffsets.PendingFault);
            Il.Emit(OpCodes.Brtrue, fault);
            Il.Emit(OpCodes.Br, cont);
        });
    }

    /// <summary>Writes <paramref name="value"/> (low <paramref name="size"/> bytes) at <see cref="Lin"/>.</summary>
    internal void EmitWrite(int size, Local64 value)
    {
        EmitLimitCheck(size);
        Label slow = Il.Label(), cont = Il.Label(), fault = FaultExit();
        int slowFlags = SlowPathFlags;
        _wroteMemory = true;
        EmitTlbEntry(StateOffsets.TlbWrite);
        EmitTlbCompare(size, slow);
        EmitHostAddress();
        Il.Load(value);
        Il.StoreHost(size);
        Il.Mark(cont);
        _outOfLine.Add(() =>
        {
            Il.Mark(slow);
            Il.Gen.Emit(OpCodes.Ldarg_0); Il.Load(Lin); Il.ConstI4(size | slowFlags); Il.Load(value);
            Il.Call(MWriteForJit);
            Il.LoadState32(StateOffsets.PendingFault);
            Il.Emit(OpCodes.Brtrue, fault);
            // A store into a page holding translations: finish this instruction, then leave the block.
            Il.LoadState32(StateOffsets.ExitRequest); Il.ConstI4(ExitRequestBits.LeaveBlock); Il.Emit(OpCodes.And);
            Il.Gen.Emit(OpCodes.Stloc, _smc);
            Il.Emit(OpCodes.Br, cont);
        });
    }

    void EmitSmcCheck()
    {
        var exit = Il.Label();
        Il.Gen.Emit(OpCodes.Ldloc, _smc);
        Il.Emit(OpCodes.Brtrue, exit);
        var (op, size) = (_pending, _pendingSize);
        ulong next = CpuCore.NextIp(Insn, _b.Mode);
        int retired = _k + 1;
        _outOfLine.Add(() =>
        {
            Il.Mark(exit);
            ExitVia(next, retired, op, size);
        });
    }

    /// <summary>An out-of-line exit that leaves state as it was before the current instruction (precise fault).</summary>
    internal Label FaultExit()
    {
        var l = Il.Label();
        var (op, size) = (_pending, _pendingSize);
        ulong ip = CpuCore.IpOf(Insn, _b.Mode);
        int retired = _k;
        _outOfLine.Add(() =>
        {
            Il.Mark(l);
            ExitVia(ip, retired, op, size);
        });
        return l;
    }

    // ---- flags -----------------------------------------------------------------------------------

    /// <summary>Records a flag-producing operation; computes nothing if no later instruction reads the flags.</summary>
    internal void SetFlags(FlagOp op, int size, Local64 res, Local64 a, Local64 b)
    {
        if (!FlagsLiveAfter) { _pending = FlagOp.None; return; }
        Il.Load(res); Il.Store(_fres);
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
        Il.StoreState64(StateOffsets.FlagRes, _fres);
        Il.StoreState64(StateOffsets.FlagSrc1, _fa);
        Il.StoreState64(StateOffsets.FlagSrc2, _fb);
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

    void EmitZero() { Il.Load(_fres); Il.Const(0); Il.Emit(OpCodes.Ceq); }

    void EmitSign(int size)
    {
        Il.Load(_fres); Il.ConstI4(size * 8 - 1); Il.Emit(OpCodes.Shr_Un); Il.Emit(OpCodes.Conv_I4); Il.ConstI4(1); Il.Emit(OpCodes.And);
    }

    // ---- exits -----------------------------------------------------------------------------------

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
        if (((_b.CsBase + target) >> 12) != ((_b.CsBase + _b.Rip) >> 12))
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
            int member = RegionIndex(CpuCore.NextIp(last, _blocks[n].Mode));
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
        Il.Gen.Emit(OpCodes.Ldarg_0); Il.Gen.Emit(OpCodes.Ldarg_1); Il.Gen.Emit(OpCodes.Ldloc, _fnptr);
        EmitTailCall();
    }

    void EmitTailCall()
    {
        Il.Emit(OpCodes.Tailcall);
        Il.Gen.EmitCalli(OpCodes.Calli, CallingConventions.Standard, typeof(int), [typeof(CpuCore), typeof(CpuState*)], null);
        Il.Emit(OpCodes.Ret);
    }

    /// <summary>Tier-0 call for an instruction not lowered inline. Returns true if it ended the block.</summary>
    bool EmitFallback()
    {
        ref readonly var i = ref Insn;
        FlushPending();
        WriteBack();
        EmitInterpretCall(_bi, _k);
        ReloadUsed();
        bool ends = _k == _b.Insns.Length - 1 && CpuCore.EndsBlock(i);
        if (!ends) return false;
        // Not chained past STI/MOV SS/POP SS: the dispatcher runs the next instruction inside the interrupt shadow.
        if (CpuCore.MayStartInterruptShadow(i)) { ExitVia(NextIp, _k + 1); return true; }
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
        _outOfLine.Add(() =>
        {
            Il.Mark(slow);
            FlushFlags(op, size);
            WriteBack();
            EmitInterpretCall(bi, k);
            ReloadUsed();
            Il.Emit(OpCodes.Br, cont);
        });
        return slow;
    }

    /// <summary>Calls tier 0 for instruction <paramref name="k"/> of member <paramref name="bi"/> (CpuState must hold the
    /// registers and flags) and leaves the method if it faulted or asked to stop after it.</summary>
    void EmitInterpretCall(int bi, int k)
    {
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
            Il.Load(_retired); Il.Emit(OpCodes.Add);
            Il.Emit(OpCodes.Stind_I8);
            Il.Emit(OpCodes.Br, _retDispatch);
        });
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
