namespace DynaSmp.Jit.Cpu;

/// <summary>How an interrupt or exception arose: decides the EXT bit, DPL checks and the saved RIP.</summary>
public enum EventKind
{
    /// <summary>A processor-detected exception (fault or trap).</summary>
    Exception,
    /// <summary>A maskable interrupt from the interrupt controller.</summary>
    External,
    Nmi,
    /// <summary>INT n, INT3, INTO: the gate's DPL must be at least CPL.</summary>
    Software,
    /// <summary>INT1 (ICEBP): a software-raised #DB without the DPL check.</summary>
    PrivilegedSoftware,
}
