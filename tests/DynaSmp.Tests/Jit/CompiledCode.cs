using DynaSmp.Jit;
using Iced.Intel;

namespace DynaSmp.Tests.Jit;

/// <summary>What a test asks of compiled code after it ran.</summary>
static class CompiledCode
{
    /// <summary>The instruction forms compiled code handed to tier 0 (<see cref="CpuCore.TierZeroCalls"/>, which
    /// <see cref="JitOptions.ProfileFallbacks"/> turns on), in code order.</summary>
    public static List<string> TierZeroCallForms(CpuCore cpu)
    {
        var forms = new List<string>();
        var counts = cpu.TierZeroCalls ?? throw new InvalidOperationException("run with ProfileFallbacks to count tier-0 calls");
        for (int c = 0; c < counts.Length; c++) if (counts[c] != 0) forms.Add(((Code)c).ToString());
        return forms;
    }
}
