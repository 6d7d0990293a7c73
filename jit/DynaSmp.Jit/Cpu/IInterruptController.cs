namespace DynaSmp.Jit.Cpu;

/// <summary>
/// The CPU's view of its local interrupt controller (the machine's LAPIC): the INTR line and the
/// acknowledge cycle. The CPU asks only when it can take an interrupt (RFLAGS.IF set, no shadow), so the
/// controller picks the vector at that moment with its own priority rules.
/// </summary>
public interface IInterruptController
{
    /// <summary>Returns the vector to deliver and moves it to in-service, or -1 if nothing is deliverable now.</summary>
    int Acknowledge();
}
