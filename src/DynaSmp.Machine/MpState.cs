namespace DynaSmp.Machine;

/// <summary>KVM's x86 mp_state values (include/uapi/linux/kvm.h), with KVM's numbering.</summary>
public enum MpState
{
    Runnable = 0,
    Uninitialized = 1,
    InitReceived = 2,
    Halted = 3,
    /// <summary>Legacy and set-only: SetMpState turns it into INIT_RECEIVED plus a pending SIPI; never reported.</summary>
    SipiReceived = 4,
}
