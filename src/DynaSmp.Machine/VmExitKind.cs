namespace DynaSmp.Machine;

/// <summary>How a VM ended.</summary>
public enum VmExitKind
{
    /// <summary>Still running.</summary>
    None,
    /// <summary>The guest wrote isa-debug-exit; the status is (value << 1) | 1, as QEMU's.</summary>
    DebugExit,
    /// <summary>Stopped by the host (Stop).</summary>
    Stopped,
    /// <summary>Stopped by the host because its deadline passed.</summary>
    Timeout,
    /// <summary>A vCPU triple-faulted (KVM_EXIT_SHUTDOWN); this machine does not reset, it stops.</summary>
    TripleFault,
    /// <summary>A guest exception the machine cannot deliver (only with an exception intercept set).</summary>
    GuestError,
    /// <summary>The guest used a feature this machine deliberately does not emulate (virtual-8086 mode, ...).</summary>
    Unsupported,
    /// <summary>Stopped by the host because the VM outgrew the host memory it was admitted with.</summary>
    HostResources,
    /// <summary>The guest powered the machine off (ACPI S5): a clean end, status 0.</summary>
    PowerOff,
    /// <summary>The guest reset the machine (port 0xCF9, 0x92 or the 8042); this machine stops instead (QEMU -no-reboot).</summary>
    Reset,
    /// <summary>A host-side bug caught on a vCPU thread.</summary>
    InternalError,
}
