namespace DynaSmp.Jit.Cpu;

/// <summary>Why <see cref="CpuCore.Run"/> returned to its caller (the machine's run loop).</summary>
public enum ExitReason
{
    /// <summary>Another thread set ExitRequest.Stop.</summary>
    ExitRequested,
    /// <summary>HLT executed; RIP points past it.</summary>
    Hlt,
    /// <summary>A guest exception the core could not deliver; RIP points at the faulting instruction.</summary>
    Exception,
    /// <summary>The instruction budget given to Run was used up.</summary>
    BudgetExhausted,
    /// <summary>A triple fault: the CPU entered shutdown (KVM_EXIT_SHUTDOWN). The machine resets or stops the VM.</summary>
    Shutdown,
    /// <summary>Something the core does not model yet; the message names it.</summary>
    Unsupported,
}
