using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>Static helpers called from translated code (RyuJIT inlines the small ones).</summary>
public static unsafe class JitHelpers
{
    /// <summary>Status of <see cref="Interpret"/> (the values of <see cref="CpuCore.Step"/>).</summary>
    public const int Continue = CpuCore.StepContinue, Faulted = CpuCore.StepFaulted, StopAfter = CpuCore.StepStopAfter;

    /// <summary>Runs instruction <paramref name="k"/> of a block (its instruction array's GCHandle) through tier 0;
    /// CpuState holds the registers.</summary>
    // PERF: not inlined into compiled code: RyuJIT imported it (and the GCHandle, cast and profile-count code under it)
    // into every region with a tier-0 call, about 15 us of compile time each, for a call that costs far more to run.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static int Interpret(CpuCore c, nint insnsHandle, int k, ExecMode mode)
    {
        var insns = (Instruction[])GCHandle.FromIntPtr(insnsHandle).Target!;
        if (c.TierZeroCalls is { } counts) counts[(int)insns[k].Code]++;
        return c.Step(insns[k], mode);
    }

    /// <summary>Code address of the compiled block at <paramref name="rip"/> if the jump cache has one, else 0.</summary>
    // PERF: not inlined: nearly every region calls it from its shared indirect tail, and RyuJIT's inlining attempt cost
    // about 150 us of compile time per call site (CompileCostQuick's synthetic calls: 2 sites 350 us against 57 us).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static nint IndirectTarget(CpuCore c, ulong rip)
    {
        CpuState* s = c.State;
        var cb = c.JumpCache.Probe(rip, s->Mode, s->Cs.Base)?.Compiled;
        if (cb == null) return 0;
        nint fn = *cb.EntryCell;
        if (fn == CompiledBlock.LinkStubEntry) return 0;
        s->ExitSlots = (nint)cb.Slots; // the callee indexes its own VM's slots
        return fn;
    }

    /// <summary>RDTSC/RDTSCP from translated code: the TSC as tier 0 reads it, or 0 with #GP(0) pending when CR4.TSD
    /// forbids it at this CPL (SDM Vol. 2B RDTSC).</summary>
    public static ulong ReadTsc(CpuCore c)
    {
        CpuState* s = c.State;
        if ((s->Cr4 & Cr4.TSD) != 0 && (s->Cr0 & Cr0.PE) != 0 && s->Cpl != 0) { c.SetPendingFault(CpuFault.GP()); return 0; }
        return c.ReadTsc();
    }

    public static int Condition(CpuState* s, int cc) => Flags.Condition(s, cc) ? 1 : 0;

    /// <summary>CF of the flag record a block was entered with: <paramref name="encoded"/> is the translator's description
    /// (operation | size &lt;&lt; 8) of the record held in the flag locals, 0 when the flags are in CpuState.</summary>
    public static ulong CarryOfRecord(CpuState* s, int encoded, ulong res, ulong a, ulong b) =>
        encoded == 0 ? Flags.Carry(s) : Flags.CarryOf((FlagOp)(encoded & 0xFF), encoded >> 8, res, a, b);
}
