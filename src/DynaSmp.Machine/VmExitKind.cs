namespace DynaSmp.Machine;

/// <summary>How a VM ended.</summary>
public enum VmExitKind
{
    /// <summary>Still running.</summary>
    None,
    /// <summary>The guest wrote isa-debug-exit; the status is (value << 1) | 1, as QEMU's.</summary>
    DebugExit,
    /// <summary>Stopped by the host (Stop, timeout).</summary>
    Stopped,
    /// <summary>A vCPU triple-faulted (KVM_EXIT_SHUTDOWN); this machine does not reset, it stops.</summary>
    TripleFault,
    /// <summary>A guest exception the machine cannot deliver, or an unsupported feature.</summary>
    GuestError,
    /// <summary>A host-side bug caught on a vCPU thread.</summary>
    InternalError,
}
