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
