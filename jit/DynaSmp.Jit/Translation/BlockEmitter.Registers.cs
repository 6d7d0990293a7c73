using System.Reflection.Emit;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

// Guest registers in IL locals: loads, width-correct stores, write-back and reload around tier-0 calls.
sealed unsafe partial class BlockEmitter
{
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

    internal void LoadReg(Register r)
    {
        int idx = X86Operands.GprIndex(r, out int shift);
        Il.Load(_gpr[idx]);
        if (shift != 0) { Il.ConstI4(shift); Il.Emit(OpCodes.Shr_Un); }
        Il.Truncate(r.GetSize());
    }

    /// <summary>Writes a guest register with x86 width rules (32-bit zero-extends, 8/16-bit merge).</summary>
    internal void StoreReg(Register r, Local64 v)
    {
        int idx = X86Operands.GprIndex(r, out int shift);
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

    /// <summary>Whether this region branches backward to one of its members (a loop runs inside the method).</summary>
    bool _loops;
    /// <summary>In a region that loops, the 64-bit locals other than guest registers that live through the loop, in their
    /// CpuState.JitSpill slots; the retired count is first (<see cref="LoadRetiredAfterCall"/>) and _curFlags, an int,
    /// takes the slot after the last.</summary>
    Local64[] _spilled = [];

    void PlanLoopSpills()
    {
        _loops = HasBackEdge();
        if (_loops) _spilled = [_retired, _fres, _fa, _fb, _fc];
    }

    int CurFlagsSpillOffset => StateOffsets.JitSpill + _spilled.Length * 8;

    /// <summary>Before a helper call: guest registers to CpuState (<paramref name="registers"/>: a tier-0 call, which
    /// reads and writes them; else only in a region that loops) and, in a region that loops, the other values that live
    /// through the loop to CpuState.JitSpill, so that none of them is live across the call.</summary>
    /// <remarks>PERF: RyuJIT keeps a local that lives across a call in a callee-saved register or on the stack; with a
    /// TLB-miss call inside every loop body, most guest registers of a loop lived on the stack (a 5-instruction sieve loop
    /// became 60 host instructions). Stored and reloaded on the cold path, they can stay in any register.</remarks>
    void SaveForCall(bool registers)
    {
        if (registers || _loops) WriteBack();
        if (!_loops) return;
        for (int n = 0; n < _spilled.Length; n++) Il.StoreState64(StateOffsets.JitSpill + n * 8, _spilled[n]);
        Il.StateAddress(CurFlagsSpillOffset); Il.Gen.Emit(OpCodes.Ldloc, _curFlags); Il.Emit(OpCodes.Stind_I4);
    }

    /// <summary>After the call: what <see cref="SaveForCall"/> stored, read back.</summary>
    void RestoreAfterCall(bool registers)
    {
        if (registers || _loops) ReloadUsed();
        if (!_loops) return;
        for (int n = 0; n < _spilled.Length; n++) { Il.LoadState64(StateOffsets.JitSpill + n * 8); Il.Store(_spilled[n]); }
        Il.LoadState32(CurFlagsSpillOffset); Il.Gen.Emit(OpCodes.Stloc, _curFlags);
    }

    /// <summary>The retired-count local as it was at a call, read from its spill slot in a region that loops (so that
    /// the local need not live across the call for a path that leaves straight after it).</summary>
    void LoadRetiredAfterCall()
    {
        if (_loops) Il.LoadState64(StateOffsets.JitSpill);
        else Il.Load(_retired);
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
}
