namespace DynaSmp.Machine.Apic;

/// <summary>An interrupt message on the APIC bus from a device rather than a vCPU: what an IOAPIC redirection entry
/// or an MSI address/data pair names (SDM Vol. 3A 11.11). Always an "assert"; level-triggered messages set the
/// target's TMR bit so its EOI is broadcast back (<see cref="Vm.LevelEoi"/>).</summary>
public readonly record struct ApicMessage(uint Destination, bool Logical, DeliveryMode Mode, byte Vector, bool LevelTriggered)
{
    /// <summary>The same message as an ICR low word (assert, no shorthand), so it takes the IPI routing path.</summary>
    public uint IcrLow => Vector | (uint)Mode << 8 | (Logical ? 1u << 11 : 0) | 1u << 14 | (LevelTriggered ? 1u << 15 : 0);
}

/// <summary>The 8259A pair as a LAPIC sees it through LINT0 in ExtINT mode: the vector comes from the PIC's own
/// interrupt-acknowledge cycle, not from the LAPIC's IRR.</summary>
public interface IExtIntSource
{
    /// <summary>INTR is asserted (an unmasked request is waiting).</summary>
    bool InterruptPending { get; }

    /// <summary>The INTA cycle: the vector to deliver (a spurious IRQ 7 vector if the request went away).</summary>
    int Acknowledge();
}
