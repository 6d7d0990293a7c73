using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>Static helpers called from translated code (RyuJIT inlines the small ones).</summary>
public static unsafe class JitHelpers
{
    /// <summary>Status of <see cref="Interpret"/>: continue the block.</summary>
    public const int Continue = 0, Faulted = 1, StopAfter = 2;

    /// <summary>Runs instruction <paramref name="k"/> of a block through tier 0. State is already in CpuState
    /// and RIP holds the next instruction's address.</summary>
    public static int Interpret(CpuCore c, nint blockHandle, int k)
    {
        var b = (Block)GCHandle.FromIntPtr(blockHandle).Target!;
        ref readonly Instruction insn = ref b.Insns[k];
        CpuState* s = c.State;
        ulong ip = CpuCore.NextIp(insn, b.Mode) - (ulong)insn.Length;
        if ((b.Mode & ExecMode.SizeMask) != ExecMode.Code64) ip &= (b.Mode & ExecMode.SizeMask) == ExecMode.Code32 ? 0xFFFF_FFFF : 0xFFFF;
        if (insn.Code == Code.INVALID) { s->Rip = ip; s->PendingFault = Vector.UD + 1; s->PendingErrorCode = 0; return Faulted; }
        try { Interp.Execute(c, insn); }
        catch (CpuFault f)
        {
            c.SetPendingFault(f);
            if (f.IsTrap) return StopAfter; // completed: RIP is already past it
            s->Rip = ip;
            return Faulted;
        }
        return s->HaltRequested != 0 || (s->ExitRequest & ExitRequestBits.CodeModified) != 0 ? StopAfter : Continue;
    }

    /// <summary>Code address of the compiled block at <paramref name="rip"/> if the jump cache has one, else 0.</summary>
    public static nint IndirectTarget(CpuCore c, ulong rip)
    {
        CpuState* s = c.State;
        Block? b = c.JumpCache[(int)(rip ^ (rip >> 12)) & (CpuCore.JumpCacheSize - 1)];
        if (b == null || b.Rip != rip || b.Mode != s->Mode || b.CsBase != s->Cs.Base || b.Invalid) return 0;
        var cb = b.Compiled;
        if (cb == null) return 0;
        nint fn = *cb.EntryCell;
        return fn == CompiledBlock.LinkStubEntry ? 0 : fn;
    }

    public static int Condition(CpuState* s, int cc) => Flags.Condition(s, cc) ? 1 : 0;
}
