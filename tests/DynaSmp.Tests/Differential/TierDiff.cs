using System.Text;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Tests.Differential;

/// <summary>The end state of one case run in one tier, as the tier-vs-tier tests compare it.</summary>
interface ITierOutcome
{
    ExitReason Exit { get; }
    int Vector { get; }
    ulong Rip { get; }
    ulong[] Gpr { get; }
    ulong Flags { get; }
    long CompiledEntries { get; }
}

/// <summary>Tier 0 (the oracle) against tier 1 on the same case: exit, IP, registers and the defined flags.</summary>
static class TierDiff
{
    /// <summary>What differs, one line each (empty when nothing does). The flags compared are <paramref name="flagMask"/>,
    /// or at a fault the ones defined before the faulting instruction (<paramref name="faultFlagMask"/>).</summary>
    public static StringBuilder Compare(ITierOutcome t0, ITierOutcome t1, ulong[] inputGpr, int gprs, ulong flagMask,
        IReadOnlyDictionary<ulong, ulong>? faultFlagMask)
    {
        var sb = new StringBuilder();
        if (t1.CompiledEntries == 0) sb.AppendLine("  tier 1 did not run");
        if (t0.Exit != t1.Exit || t0.Vector != t1.Vector) sb.AppendLine($"  exit: tier 0 {t0.Exit} {t0.Vector}, tier 1 {t1.Exit} {t1.Vector}");
        if (t0.Rip != t1.Rip) sb.AppendLine($"  IP: tier 0 0x{t0.Rip:x}, tier 1 0x{t1.Rip:x}");
        for (int k = 0; k < gprs; k++)
            if (t0.Gpr[k] != t1.Gpr[k]) sb.AppendLine($"  gpr{k}: tier 0 0x{t0.Gpr[k]:x}, tier 1 0x{t1.Gpr[k]:x} (input 0x{inputGpr[k]:x})");
        ulong mask = t0.Exit == ExitReason.Exception && faultFlagMask != null && faultFlagMask.TryGetValue(t0.Rip, out var atFault) ? atFault : flagMask;
        if (((t0.Flags ^ t1.Flags) & mask) != 0) sb.AppendLine($"  flags: tier 0 0x{t0.Flags & mask:x}, tier 1 0x{t1.Flags & mask:x} (compared 0x{mask:x})");
        return sb;
    }
}
