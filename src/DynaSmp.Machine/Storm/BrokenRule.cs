namespace DynaSmp.Machine.Storm;

/// <summary>
/// Test-only fault injection: each value breaks exactly one KVM rule so tests can prove the storm checker catches it.
/// Set through <see cref="VmConfig.BrokenRule"/> (internal: no command line reaches it); read once into a readonly field
/// where the rule lives, so the correct path pays one predictable compare on a cold branch.
/// </summary>
public enum BrokenRule
{
    None,
    /// <summary>A SIPI also restarts a RUNNABLE vCPU (KVM drops it: only INIT_RECEIVED accepts a SIPI).</summary>
    AcceptSecondSipi,
    /// <summary>A HALTED vCPU ignores a pending INIT/SIPI/NMI as a wake event (and is not kicked for it).</summary>
    DropWakeup,
    /// <summary>INIT on the BSP leaves it in INIT_RECEIVED as on an AP (KVM: RUNNABLE at the reset vector).</summary>
    InitBspAsAp,
    /// <summary>An NMI is reported queued but never set pending.</summary>
    LoseNmi,
}
