using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit;

/// <summary>
/// One x86 CPU: its state, MMU and dispatcher. <see cref="Run"/> executes guest code until something
/// needs its caller (HLT, an undeliverable exception, an exit request), like one KVM_RUN.
/// </summary>
public sealed unsafe partial class CpuCore : IDisposable
{
    public CpuState* State { get; private set; }
    public GuestRam Ram { get; }
    public IGuestBus Bus { get; }
    public BlockCache Cache { get; }
    public Mmu Mmu { get; }
    public CpuidModel Cpuid { get; } = new();
    public JitOptions Options { get; }
    /// <summary>The VM's time base (host time unless the VM is deterministic).</summary>
    public GuestClock Clock { get; }
    // Virtual time: instructions retired when this core's current turn began, so time also moves inside a turn.
    ulong _turnStartRetired;

    public JumpCache JumpCache { get; } = new();

    readonly GuestCodeReader _reader;
    readonly Decoder[] _decoders = new Decoder[3];
    readonly Instruction[] _decodeBuffer = new Instruction[JitOptions.MaxBlockInstructions];

    /// <summary>Times <see cref="Run"/>'s dispatcher looked up a block (a measure of chaining: a hot chained loop adds none).</summary>
    public long DispatcherLookups;
    /// <summary>PAUSE instructions executed, and when the current run of them began and last paused (PAUSE-loop
    /// exiting, <see cref="Interp.Pause"/>).</summary>
    public long PauseCount, SpinStartedAt, LastPauseAt;
    /// <summary>Host yields PAUSE-loop exiting made.</summary>
    public long PleYields;
    public long InterpretedBlocks;
    /// <summary>NMIs taken by the guest (for the storm's no-event-lost accounting).</summary>
    public long NmisDelivered;
    /// <summary>Queued NMIs that a RESET/INIT discarded.</summary>
    public long NmisClearedByReset;
    /// <summary>Blocks this CPU decoded and published (its share of the cache's translations), and stores of its own
    /// that invalidated translated code (self- or cross-modifying code). For statistics.</summary>
    public long BlocksDecoded, CodeWriteInvalidations;
    /// <summary>Guest stores that took the slow path (TLB miss, MMIO, page crossing), and those that landed on a page
    /// holding translated code (which never gets a write-TLB entry): where store time goes (profile).</summary>
    public long SlowWrites, CodePageWrites;
    public long CompiledBlockEntries;
    /// <summary>Tier-0 calls from translated code per Iced <see cref="Code"/>, when <see cref="JitOptions.ProfileFallbacks"/>
    /// is on (null otherwise): the list of what tier 1 still leaves to the interpreter in a workload.</summary>
    public readonly long[]? TierZeroCalls;
    /// <summary>Instructions tier 0 ran through its general dispatch (not a fast form) per Iced <see cref="Code"/>, with
    /// <see cref="JitOptions.ProfileFallbacks"/>: what a new fast form would take over.</summary>
    public readonly long[]? GeneralDispatch;

    /// <summary>With <see cref="JitOptions.ProfileFallbacks"/>: how often the dispatcher interpreted each block, to find
    /// hot code that stays in tier 0.</summary>
    public readonly Dictionary<Block, long>? InterpretedByBlock;

    public int ExitVector { get; private set; }
    public ulong ExitErrorCode { get; private set; }
    public string? ExitMessage { get; private set; }

    public CpuCore(GuestRam ram, IGuestBus bus, BlockCache cache, JitOptions? options = null, GuestClock? clock = null)
    {
        Clock = clock ?? GuestClock.Host;
        Ram = ram;
        Bus = bus;
        Cache = cache;
        Options = options ?? JitOptions.Default;
        State = (CpuState*)NativeMemory.AlignedAlloc((nuint)sizeof(CpuState), 64);
        Unsafe.InitBlockUnaligned(State, 0, (uint)sizeof(CpuState));
        State->RamBase = (ulong)ram.Base;
        State->RamSize = ram.Size;
        Mmu = new Mmu(this);
        if (Options.ProfileFallbacks) { TierZeroCalls = new long[Enum.GetValues<Code>().Length]; GeneralDispatch = new long[TierZeroCalls.Length]; InterpretedByBlock = []; }
        _reader = new GuestCodeReader(this);
        for (int k = 0; k < 3; k++) _decoders[k] = Decoder.Create(16 << k, _reader, DecoderOptions.None);
        State->FlushTlb();
        cache.Register(this);
        Reset(initEvent: false); // power-up state (SDM Vol. 3A Table 10-1)
    }

    public ref ulong Gpr(int index) => ref State->Gpr[index];

    /// <summary>Puts the CPU in flat 64-bit mode without paging: a convenience for running
    /// user-mode code in tests and benchmarks (linear = physical). Like SetFlat32 and SetReal it intercepts
    /// every exception (reported as ExitReason.Exception), since no IDT is set up.</summary>
    public void SetFlat64(ulong rip, ulong rsp)
    {
        CpuState* s = State;
        s->Cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
        s->Efer = 0x500; // LME | LMA
        s->Cs = SegmentCache.Flat(0x08, 0x9B | SegmentCache.Present | SegmentCache.Long);
        s->Ss = s->Ds = s->Es = SegmentCache.Flat(0x10, 0x93 | SegmentCache.Present | SegmentCache.DefaultBig);
        s->Fs = s->Gs = SegmentCache.Flat(0, 0x93);
        s->Cr4 |= Interpreter.Interp.Cr4OsFxsr; // a configured OS enables SSE
        s->Rip = rip;
        s->Gpr[4] = rsp;
        Flags.Set(s, 0x2);
        ExceptionIntercept = uint.MaxValue;
        UpdateMode();
    }

    /// <summary>Flat 32-bit protected mode (CS/SS 32-bit, bases 0), no paging.</summary>
    public void SetFlat32(ulong eip, ulong esp)
    {
        CpuState* s = State;
        s->Cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
        s->Efer = 0;
        s->Cs = SegmentCache.Flat(0x08, 0x9B | SegmentCache.Present | SegmentCache.DefaultBig);
        s->Ss = s->Ds = s->Es = s->Fs = s->Gs = SegmentCache.Flat(0x10, 0x93 | SegmentCache.Present | SegmentCache.DefaultBig);
        s->Cr4 |= Interpreter.Interp.Cr4OsFxsr; // a configured OS enables SSE
        s->Rip = eip;
        s->Gpr[4] = esp;
        Flags.Set(s, 0x2);
        ExceptionIntercept = uint.MaxValue;
        UpdateMode();
    }

    /// <summary>Real mode with CS:IP as given and all other segments = <paramref name="cs"/>.</summary>
    public void SetReal(ushort cs, ushort ip, ushort sp)
    {
        CpuState* s = State;
        s->Cr0 = Cr0.ET;
        s->Efer = 0;
        for (var r = SegReg.Es; r <= SegReg.Gs; r++)
        {
            ref var seg = ref s->Seg(r);
            seg.LoadRealMode(cs);
            seg.Limit = 0xFFFF;
            seg.Attributes = 0x93 | SegmentCache.Present;
        }
        s->Rip = ip;
        s->Gpr[4] = sp;
        Flags.Set(s, 0x2);
        ExceptionIntercept = uint.MaxValue;
        UpdateMode();
    }

    /// <summary>Recomputes the decode-relevant mode bits after CR0, EFER or CS changed.</summary>
    public void UpdateMode()
    {
        CpuState* s = State;
        ExecMode m;
        if ((s->Cr0 & Cr0.PE) == 0) m = ExecMode.Code16 | ExecMode.Real;
        else if ((s->Efer & 0x400) != 0 && (s->Cs.Attributes & SegmentCache.Long) != 0) m = ExecMode.Code64;
        else m = (s->Cs.Attributes & SegmentCache.DefaultBig) != 0 ? ExecMode.Code32 : ExecMode.Code16;
        byte oldCpl = s->Cpl;
        // CPL is CS.RPL once CS was loaded in protected mode; right after MOV CR0 sets PE the real-mode CS is
        // still in place and CPL stays 0 until the far jump (SDM 9.9.1).
        bool enteringProtected = (s->Mode & ExecMode.Real) != 0 && (s->Cr0 & Cr0.PE) != 0;
        s->Cpl = (byte)((s->Cr0 & Cr0.PE) == 0 || enteringProtected ? 0 : s->Cs.Selector & 3);
        if (s->Cpl == 3) m |= ExecMode.User;
        s->Mode = m;
        // TLB entries carry the permissions of the CPL that filled them (the hit path checks only the tag).
        if (s->Cpl != oldCpl) Mmu.OnCplChange();
    }

    /// <summary>Asks this CPU, from any thread, to leave guest code at the next block boundary.</summary>
    public void RequestExit() => Interlocked.Or(ref State->ExitRequest, ExitRequestBits.Stop);

    internal void RequestTlbFlush() => Interlocked.Or(ref State->ExitRequest, ExitRequestBits.FlushTlb);

    /// <summary>A store of <paramref name="size"/> bytes reached a page holding translations: drop the blocks whose
    /// bytes it overlaps, and leave the current block if any was dropped (it may be one of them).</summary>
    internal void OnCodePageWrite(ulong phys, int size)
    {
        if (Cache.InvalidateRange(phys, size))
        {
            CodeWriteInvalidations++;
            Interlocked.Or(ref State->ExitRequest, ExitRequestBits.LeaveBlock);
        }
    }

    internal void SetPendingFault(CpuFault f)
    {
        State->PendingFault = f.Vector + 1;
        State->PendingErrorCode = f.ErrorCode;
    }

    /// <summary>The VM clock as this CPU sees it: host ticks, or the virtual time of the turn plus the instructions
    /// this CPU has retired in it (1 ns each), so a guest polling RDTSC sees time move within a turn.</summary>
    public long ClockNow() => Clock.IsVirtual ? Clock.Now + (long)(State->InstructionsRetired - _turnStartRetired) : Stopwatch.GetTimestamp();

    /// <summary>Deterministic scheduler, after this CPU's turn: returns the instructions it retired since the last
    /// call (the time the turn took) and starts counting afresh, so between turns <see cref="ClockNow"/> is the VM clock.</summary>
    public long EndTurn()
    {
        ulong now = State->InstructionsRetired;
        long retired = (long)(now - _turnStartRetired);
        _turnStartRetired = now;
        return retired;
    }

    public ulong ReadTsc() => (ulong)ClockNow() + State->TscOffset;

    /// <summary>I/O permission for IN/OUT/INS/OUTS (SDM Vol. 1 19.5): in protected mode with CPL &gt; IOPL, or in
    /// virtual-8086 mode, every bit of the TSS I/O permission bitmap covering the accessed bytes must be 0.
    /// The bitmap starts at the 16-bit offset stored at TSS offset 66h; a bitmap byte beyond the TSS limit
    /// (or a 16-bit TSS, which has no bitmap) denies the access. The processor always reads two bitmap bytes.</summary>
    internal void CheckIoPermission(ushort port, int size)
    {
        CpuState* s = State;
        if ((s->Cr0 & Cr0.PE) == 0) return;
        int iopl = (int)((s->Rflags >> 12) & 3);
        if (s->Cpl <= iopl && (s->Rflags & RFlags.VM) == 0) return;
        ref SegmentCache tr = ref s->Tr;
        uint type = tr.Attributes & 0xF;
        if ((tr.Attributes & SegmentCache.Present) == 0 || (type != 0x9 && type != 0xB) || tr.Limit < 0x67)
            throw CpuFault.GP();
        ulong bitmap = Mem.Read16(this, tr.Base + 0x66);
        ulong offset = bitmap + (ulong)(port >> 3);
        if (offset + 1 > tr.Limit) throw CpuFault.GP();
        uint bits = Mem.Read16(this, tr.Base + offset);
        uint mask = ((1u << size) - 1) << (port & 7);
        if ((bits & mask) != 0) throw CpuFault.GP();
    }

    /// <summary>Runs guest code until an exit. <paramref name="instructionBudget"/> is checked at
    /// dispatcher entries only, so a chained hot loop may overrun it; use <see cref="RequestExit"/> to stop one.</summary>
    public ExitReason Run(ulong instructionBudget = ulong.MaxValue)
    {
        CpuState* s = State;
        ulong stopAt = instructionBudget == ulong.MaxValue ? ulong.MaxValue : s->InstructionsRetired + instructionBudget;
        s->RetireLimit = stopAt;
        Mmu.SyncWindowWithPaging(); // a VMM, loader or INIT may have written CR0 since the last run
        try
        {
            while (true)
            {
                // An executed HLT is reported before a stop request: KVM handles the HLT exit it took before it
                // looks at signals, so a vCPU stopped right after HLT is HALTED, not RUNNABLE with RIP past it.
                if (s->HaltRequested != 0) { s->HaltRequested = 0; return ExitReason.Hlt; }
                if (Volatile.Read(ref s->ExitRequest) != 0)
                {
                    int req = Interlocked.Exchange(ref s->ExitRequest, 0);
                    if ((req & ExitRequestBits.FlushTlb) != 0) Mmu.FlushWriteEntries();
                    if ((req & ExitRequestBits.Stop) != 0) return ExitReason.ExitRequested;
                }
                if (s->PendingFault != 0 && HandlePendingFault() is { } faultExit) return faultExit;
                if ((s->InterruptRequest | s->NmiPending) != 0 && DeliverInterrupts() is { } intExit) return intExit;
                if (s->InstructionsRetired >= stopAt) return ExitReason.BudgetExhausted;

                DispatcherLookups++;
                Block? b = Lookup();
                if (b == null) continue; // the fetch faulted: deliver it
                if (s->InterruptShadow != 0)
                {
                    // STI / MOV SS shadow: exactly one instruction runs before interrupts are looked at again.
                    Interpret(b, 1);
                    s->InterruptShadow = 0;
                    continue;
                }
                var compiled = b.Compiled;
                if (compiled == null && Options.CompileSynchronously && Options.TierUpThreshold == 1 && !b.Invalid)
                {
                    TierUp.CompileNow(this, b); // compile-first mode: translated code only
                    compiled = b.Compiled;
                }
                if (compiled != null)
                {
                    CompiledBlockEntries++;
                    int code = compiled.Invoke(this, s);
                    if (code == CompiledBlock.ExitLink) TryLink();
                    else if (code == CompiledBlock.ExitPromote && Lookup() is { } hot) TierUp.Promote(this, hot); // RIP is the counted head's (it may have been chained to)
                    else if (code == CompiledBlock.ExitInterpret && Lookup() is { } here)
                    {
                        if (here.Compiled is { } failed) Resegment(here, failed); // its code's guard failed
                        Interpret(here);
                    }
                    continue;
                }
                Interpret(b);
            }
        }
        catch (UnsupportedGuestFeatureException e)
        {
            ExitMessage = e.Message;
            return ExitReason.Unsupported;
        }
    }

    /// <summary>Flat 32-bit code found its segments not flat: drop that code and let the block tier up again, compiled
    /// with per-access bases and limits. Blocks chained to it are unlinked (its entry cell returns ExitLink) and relink
    /// to the new code; a vCPU still inside the old code only finds its guard failing again.</summary>
    void Resegment(Block b, CompiledBlock old)
    {
        if (b.Segmented || BlockEmitter.IsSegmented(b)) return;
        b.Segmented = true;
        old.Unlink();
        b.Compiled = null;
        b.ExecCount = 0;
        Volatile.Write(ref b.TierUpQueued, 0);
    }

    /// <summary>The block at the current RIP: jump cache, then the shared cache, then a fresh decode.
    /// Returns null when fetching faulted (the fault is then pending).</summary>
    internal Block? Lookup()
    {
        CpuState* s = State;
        ulong rip = s->Rip;
        Block? b = JumpCache.Probe(rip, s->Mode, s->Cs.Base);
        if (b != null) return b;
        ulong lin = Interp.Linear(s, Register.CS, rip);
        ulong phys;
        try { phys = Mmu.Translate(lin, MemAccess.Execute); }
        catch (CpuFault f) { SetPendingFault(f); return null; }
        ulong span = Mmu.LastSpan;
        bool global = Mmu.LastGlobal;
        JumpCache.Misses++;
        b = Cache.Find(phys, s->Mode, s->Cs.Base, rip);
        if (b != null && b.Page1 != ulong.MaxValue && !SecondPageStillMaps(b, lin)) { Cache.Drop(b); b = null; }
        b ??= Decode(lin, phys);
        if (b != null) JumpCache.Fill(rip, b, lin, span, global);
        return b;
    }

    /// <summary>A block found by its first page whose bytes run into a second page holds only while that page maps where it
    /// did at decoding (QEMU compares both pages of a TB too). A fault there, or another frame, means decoding again.</summary>
    bool SecondPageStillMaps(Block b, ulong lin)
    {
        try { return (Mmu.Translate((lin & ~GuestRam.PageMask) + GuestRam.PageSize, MemAccess.Execute) >> GuestRam.PageShift) == b.Page1; }
        catch (CpuFault) { return false; }
    }

    Block? Decode(ulong lin, ulong phys)
    {
        long allocated = TranslationCost.Begin();
        try { return DecodeNew(lin, phys); }
        finally { TranslationCost.End(allocated); }
    }

    Block? DecodeNew(ulong lin, ulong phys)
    {
        CpuState* s = State;
        _reader.Reset(lin);
        var dec = _decoders[(int)(s->Mode & ExecMode.SizeMask)];
        dec.IP = s->Rip;
        int n = 0;
        ulong pageEnd = (lin & ~GuestRam.PageMask) + GuestRam.PageSize;
        ulong ipToLin = lin - s->Rip;
        while (n < _decodeBuffer.Length)
        {
            dec.Decode(out _decodeBuffer[n]);
            ref var insn = ref _decodeBuffer[n];
            if (_reader.Fault != null)
            {
                if (n == 0) { SetPendingFault(_reader.Fault); return null; }
                break; // end the block before the instruction whose fetch faulted; it faults when reached
            }
            n++;
            if (insn.Code == Code.INVALID || EndsBlock(insn) || insn.NextIP + ipToLin >= pageEnd) break;
        }
        var insns = _decodeBuffer.AsSpan(0, n).ToArray();
        var block = new Block(s->Rip, s->Cs.Base, phys, s->Mode, insns, _reader.FirstPage, _reader.SecondPage);
        var published = Cache.Publish(block);
        if (published == block) BlocksDecoded++;
        block = published;
        // Our own write-TLB may still map this page writable: drop it before the block runs.
        Mmu.FlushWriteEntries();
        return block;
    }

    /// <summary>Results of <see cref="Step"/>.</summary>
    internal const int StepContinue = 0, StepFaulted = 1, StepStopAfter = 2;

    /// <summary>Runs one decoded instruction in tier 0, for the interpreter loop and for translated code's
    /// fallback alike. Continue: done, go on. Faulted: a fault is pending, RIP is the instruction's. StopAfter:
    /// done (or a trap is pending) and the block must end here (HLT, LeaveBlock). An instruction of a fast form
    /// (<see cref="Interp.FastForms"/>, given by the interpreter loop) runs through <see cref="Interp.ExecuteFast"/>.</summary>
    internal int Step(in Instruction insn, ExecMode mode, in FastInsn fast = default)
    {
        CpuState* s = State;
        ulong next = NextIp(insn, mode);
        if (insn.Code == Code.INVALID) { s->Rip = IpOf(insn, mode); s->PendingFault = Vector.UD + 1; s->PendingErrorCode = 0; return StepFaulted; }
        s->Rip = next;
        try
        {
            if (fast.Kind != FastKind.None) Interp.ExecuteFast(this, s, fast, insn);
            else Interp.Execute(this, insn);
        }
        catch (CpuFault f)
        {
            SetPendingFault(f);
            if (f.IsTrap) return StepStopAfter; // completed: RIP is already past it
            s->Rip = IpOf(insn, mode);
            return StepFaulted;
        }
        catch (UnsupportedGuestFeatureException)
        {
            s->Rip = IpOf(insn, mode); // the exit names the instruction that needed the feature
            throw;
        }
        return s->HaltRequested != 0 || (s->ExitRequest & ExitRequestBits.LeaveBlock) != 0 ? StepStopAfter : StepContinue;
    }

    void Interpret(Block b, int limit = int.MaxValue)
    {
        CpuState* s = State;
        InterpretedBlocks++;
        if (InterpretedByBlock != null) InterpretedByBlock[b] = InterpretedByBlock.GetValueOrDefault(b) + 1;
        var insns = b.Insns;
        var fast = b.Fast ??= Interp.FastForms(insns); // a race makes equal arrays
        int n = Math.Min(insns.Length, limit);
        ulong reads = s->ProfiledReads, hits = s->ProfiledWindowHits;
        for (int k = 0; k < n; k++)
        {
            if (GeneralDispatch != null && fast[k].Kind == FastKind.None) GeneralDispatch[(int)insns[k].Code]++;
            int r = Step(insns[k], b.Mode, fast[k]);
            if (r == StepFaulted) return;
            s->InstructionsRetired++;
            if (r == StepStopAfter || s->InterruptShadow != 0) return;
        }
        // Racy between the vCPUs sharing the block: a lost update only blurs a profile.
        b.ProfiledReads += (long)(s->ProfiledReads - reads);
        b.ProfiledWindowHits += (long)(s->ProfiledWindowHits - hits);
        if (n == insns.Length && !b.Invalid)
        {
            int count = ++b.ExecCount;
            if (count == Options.TierUpThreshold) { if (!b.IsSpinWait) TierUp.Enqueue(this, b); }
            else if (count == TierUp.SharedProbeAt && count < Options.TierUpThreshold && !Options.CompileSynchronously && !b.IsSpinWait)
                TierUp.AdoptShared(this, b);
        }
    }

    /// <summary>A chained exit found its slot unlinked: patch it to the block now at RIP if that block is compiled.</summary>
    void TryLink()
    {
        CpuState* s = State;
        nint slot = s->LastExitSlot;
        if (slot == 0) return;
        s->LastExitSlot = 0;
        if (s->ExitRequest != 0 || s->PendingFault != 0 || s->HaltRequested != 0) return;
        Block? target = Lookup();
        // Not to a block that runs into a second page: a link skips the lookup that checks that page's mapping.
        if (target is { Page1: ulong.MaxValue, Compiled: { } tc }) CompiledBlock.Link(slot, tc);
    }

    public void Dispose()
    {
        if (State != null) { NativeMemory.AlignedFree(State); State = null; }
    }
}
