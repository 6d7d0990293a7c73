using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine;

/// <summary>
/// Watches one VM's vCPU lifecycle as it happens, on the thread that causes it (the vCPU's own thread, or the host
/// thread calling KVM_SET_MP_STATE). The storm checker implements it; null on a <see cref="Vcpu"/> costs one test.
/// </summary>
public interface IVcpuObserver
{
    /// <summary>mp_state changed (or a SIPI was dropped / an INIT accepted with no change) by <paramref name="path"/>.</summary>
    void OnMpState(Vcpu v, KvmPath path, MpState from, MpState to);
    /// <summary>INIT or SIPI accepted; <paramref name="latencyTicks"/> = VM clock from its latch to now.</summary>
    void OnInitSipiAccepted(Vcpu v, bool sipi, long latencyTicks);
    void OnFixedAcknowledged(Vcpu v, long latencyTicks);
}
