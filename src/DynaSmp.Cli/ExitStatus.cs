using DynaSmp.Machine;

namespace DynaSmp.Cli;

/// <summary>
/// Every exit status `dynasmp` returns, in one place (documented in README). isa-debug-exit keeps QEMU's
/// (value &lt;&lt; 1) | 1, which is always odd; every other outcome is even, so no guest write can imitate one.
/// </summary>
public enum ExitStatus
{
    /// <summary>The command did what was asked (boot: every vCPU of every VM online).</summary>
    Success = 0,
    /// <summary>Bad flags, or an input/output file that cannot be used (kept from earlier versions).</summary>
    BadInput = 2,
    /// <summary>A vCPU triple-faulted (the guest shut down; KVM_EXIT_SHUTDOWN).</summary>
    GuestShutdown = 4,
    /// <summary>The guest used something DynaSmp deliberately does not emulate (named in the message).</summary>
    Unsupported = 6,
    /// <summary>Refused before the run: the host cannot hold it (memory, threads); or stopped when it outgrew the host.</summary>
    HostResources = 8,
    /// <summary>boot/trace: the built-in guest ran but did not bring every CPU online.</summary>
    GuestFailed = 10,
    /// <summary>compare / the perf gate: a metric moved past the threshold in the wrong direction, or a value changed.</summary>
    Regression = 12,
    /// <summary>A DynaSmp bug (an unexpected host exception); please report it.</summary>
    InternalError = 70,
    /// <summary>--timeout expired (as timeout(1)).</summary>
    Timeout = 124,
}

/// <summary>Maps how a VM ended to the status and a one-line reason.</summary>
public static class ExitStatuses
{
    public static int ForVm(Vm vm)
    {
        switch (vm.ExitKind)
        {
            case VmExitKind.DebugExit: return vm.ExitStatus!.Value & 0xFF;
            case VmExitKind.TripleFault: return (int)ExitStatus.GuestShutdown;
            case VmExitKind.PowerOff: return (int)ExitStatus.Success;
            case VmExitKind.Reset: return (int)ExitStatus.GuestShutdown;
            case VmExitKind.Unsupported: return (int)ExitStatus.Unsupported;
            case VmExitKind.GuestError: return (int)ExitStatus.GuestShutdown;
            case VmExitKind.HostResources: return (int)ExitStatus.HostResources;
            case VmExitKind.Timeout: return (int)ExitStatus.Timeout;
            case VmExitKind.InternalError: return (int)ExitStatus.InternalError;
            default: return (int)ExitStatus.InternalError; // Stopped without a reason, or still running: a host bug
        }
    }

    /// <summary>The name scripts and the JSON use for a status.</summary>
    public static string Name(int status) => (status & 1) == 1 ? "debug_exit" : ((ExitStatus)status) switch
    {
        ExitStatus.Success => "success",
        ExitStatus.BadInput => "bad_input",
        ExitStatus.GuestShutdown => "guest_shutdown",
        ExitStatus.Unsupported => "unsupported",
        ExitStatus.HostResources => "host_resources",
        ExitStatus.GuestFailed => "guest_failed",
        ExitStatus.Regression => "regression",
        ExitStatus.InternalError => "internal_error",
        ExitStatus.Timeout => "timeout",
        _ => "unknown",
    };
}
