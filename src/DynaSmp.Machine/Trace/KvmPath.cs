namespace DynaSmp.Machine.Trace;

/// <summary>The KVM code path an APIC event or mp_state change corresponds to (kvm-semantics.md).</summary>
public enum KvmPath : byte
{
    /// <summary>Sender: ICR write decoded and routed (kvm_apic_send_ipi -> kvm_irq_delivery_to_apic).</summary>
    IpiSent,
    InitLatched,
    InitDeassertIgnored,
    SipiLatched,
    FixedLatched,
    FixedDroppedDisabled,
    FixedDeassertIgnored,
    NmiQueued,
    DroppedHardwareDisabled,
    ExtIntIgnored,
    InitAccepted,
    InitAcceptedBsp,
    SipiAccepted,
    SipiDropped,
    UninitializedAgain,
    Halted,
    HaltNoop,
    WokeFromHalt,
    SetMpState,
    /// <summary>INIT latched while an INIT was already pending: one acceptance serves both.</summary>
    InitCoalesced,
    /// <summary>INIT latched over a pending SIPI: the word becomes {INIT}, the SIPI is discarded.</summary>
    InitCancelledSipi,
    /// <summary>SIPI latched while a SIPI was already pending: one bit, the later vector.</summary>
    SipiCoalesced,
    NmiCoalesced,
    FixedCoalesced,
    /// <summary>Host-side delivery with no vCPU as sender (a VMM's KVM_NMI / KVM_SIGNAL_MSI / INIT-SIPI injection).</summary>
    HostInjected,
    /// <summary>An ICR write whose destination matched no APIC: routed to nobody.</summary>
    NoDestination,
    /// <summary>Sender: the KVM_HC_KICK_CPU hypercall (kvm_pv_kick_cpu_op), routed as a remote-read APIC message.</summary>
    PvKickSent,
    /// <summary>Remote-read delivery: KVM's PV unhalt kick sets pv_unhalted, which wakes a vCPU halted with IF=0.</summary>
    PvUnhaltLatched,
}

public static class KvmPathText
{
    /// <summary>One line naming the KVM function and what it did, for the timeline.</summary>
    public static string Describe(KvmPath p) => p switch
    {
        KvmPath.IpiSent => "ICR write -> kvm_apic_send_ipi -> kvm_irq_delivery_to_apic",
        KvmPath.InitLatched => "__apic_accept_irq(INIT): pending_events = {INIT}, KVM_REQ_EVENT + kick",
        KvmPath.InitDeassertIgnored => "INIT de-assert (level-triggered, level=0): ignored by __apic_accept_irq, no kick",
        KvmPath.SipiLatched => "__apic_accept_irq(STARTUP): sipi_vector stored, SIPI bit set, KVM_REQ_EVENT + kick",
        KvmPath.FixedLatched => "__apic_accept_irq(Fixed): IRR bit set, KVM_REQ_EVENT + kick",
        KvmPath.FixedDroppedDisabled => "Fixed IPI to a software-disabled APIC (SPIV bit 8 = 0): dropped",
        KvmPath.FixedDeassertIgnored => "Fixed IPI, level-triggered with level=0: dropped by __apic_accept_irq",
        KvmPath.NmiQueued => "__apic_accept_irq(NMI): nmi_queued++, KVM_REQ_NMI + kick",
        KvmPath.DroppedHardwareDisabled => "target APIC hardware-disabled (APIC_BASE.EN = 0): not a destination",
        KvmPath.ExtIntIgnored => "ExtINT IPI: ignored by __apic_accept_irq",
        KvmPath.InitAccepted => "kvm_apic_accept_events: INIT -> kvm_vcpu_reset(init_event) -> INIT_RECEIVED",
        KvmPath.InitAcceptedBsp => "kvm_apic_accept_events: INIT on a BSP (APIC_BASE.BSP = 1) -> reset -> RUNNABLE at F000:FFF0",
        KvmPath.SipiAccepted => "kvm_apic_accept_events: SIPI in INIT_RECEIVED -> CS = vector<<8, IP = 0 -> RUNNABLE",
        KvmPath.SipiDropped => "kvm_apic_accept_events: SIPI while not INIT_RECEIVED: bit cleared, SIPI dropped",
        KvmPath.UninitializedAgain => "KVM_RUN on UNINITIALIZED: blocked once, accepted events, returned -EAGAIN",
        KvmPath.Halted => "HLT with no wake event: mp_state = HALTED, vcpu_block",
        KvmPath.HaltNoop => "HLT with a wake event pending (kvm_vcpu_has_events): completes as a no-op",
        KvmPath.WokeFromHalt => "vcpu_block: woken, HALTED -> RUNNABLE",
        KvmPath.SetMpState => "KVM_SET_MP_STATE from the host",
        KvmPath.InitCoalesced => "__apic_accept_irq(INIT) with INIT already pending: coalesced, one acceptance",
        KvmPath.InitCancelledSipi => "__apic_accept_irq(INIT) over a pending SIPI: pending_events = {INIT}, the SIPI is discarded",
        KvmPath.SipiCoalesced => "__apic_accept_irq(STARTUP) with SIPI already pending: one bit, the newer vector",
        KvmPath.NmiCoalesced => "__apic_accept_irq(NMI) with an NMI already queued: coalesced (one NMI delivered)",
        KvmPath.FixedCoalesced => "__apic_accept_irq(Fixed) with the IRR bit already set: coalesced",
        KvmPath.HostInjected => "host (VMM) injection: KVM_NMI / KVM_SIGNAL_MSI / INIT-SIPI from userspace",
        KvmPath.NoDestination => "kvm_irq_delivery_to_apic: no APIC matched the destination, delivered to nobody",
        KvmPath.PvKickSent => "KVM_HC_KICK_CPU -> kvm_pv_kick_cpu_op -> kvm_irq_delivery_to_apic(remote read, physical APIC ID)",
        KvmPath.PvUnhaltLatched => "__apic_accept_irq(remote read): PV unhalt kick, pv_unhalted = 1, KVM_REQ_EVENT + kick",
        _ => p.ToString(),
    };
}
