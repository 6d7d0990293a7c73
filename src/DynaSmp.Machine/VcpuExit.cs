namespace DynaSmp.Machine;

/// <summary>Why <see cref="Vcpu.RunOnce"/> returned.</summary>
public enum VcpuExitReason { None, Again, Yield, Stopped, Shutdown, GuestError }

/// <summary>The per-vCPU exit record, reused for every exit like struct kvm_run.</summary>
public sealed class VcpuExit
{
    public VcpuExitReason Reason { get; private set; }
    public string? Message { get; private set; }

    internal VcpuExitReason Set(VcpuExitReason reason, string? message = null)
    {
        Reason = reason;
        Message = message;
        return reason;
    }
}
