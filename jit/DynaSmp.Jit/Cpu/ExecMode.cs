namespace DynaSmp.Jit.Cpu;

/// <summary>The CPU-mode bits that change how bytes decode and execute; part of every block-cache key.</summary>
[Flags]
public enum ExecMode : byte
{
    /// <summary>Default operand/address size 16 (CS.D = 0, not long mode).</summary>
    Code16 = 0,
    Code32 = 1,
    Code64 = 2,
    SizeMask = 3,
    /// <summary>CR0.PE clear: segment loads are base = selector &lt;&lt; 4.</summary>
    Real = 4,
    /// <summary>CPL 3; privileged instructions fault.</summary>
    User = 8,
}
