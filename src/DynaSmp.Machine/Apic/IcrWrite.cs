namespace DynaSmp.Machine.Apic;

/// <summary>A decoded write to the interrupt command register: everything routing and acceptance need.</summary>
public readonly record struct IcrWrite(uint Low, uint Destination)
{
    public byte Vector => (byte)Low;
    public DeliveryMode Mode => (DeliveryMode)((Low >> 8) & 7);
    public bool Logical => (Low & (1u << 11)) != 0;
    /// <summary>Bit 14: 1 = assert.</summary>
    public bool Level => (Low & (1u << 14)) != 0;
    /// <summary>Bit 15: 1 = level-triggered.</summary>
    public bool LevelTriggered => (Low & (1u << 15)) != 0;
    public DestinationShorthand Shorthand => (DestinationShorthand)((Low >> 18) & 3);

    /// <summary>INIT with trigger = level and level = 0: routed, then discarded by every target (KVM) .</summary>
    public bool IsInitDeassert => Mode == DeliveryMode.Init && LevelTriggered && !Level;

    public override string ToString() =>
        $"{Mode}{(Mode == DeliveryMode.Startup || Mode <= DeliveryMode.LowestPriority ? $" vec 0x{Vector:x2}" : "")}" +
        $" {(LevelTriggered ? "level" : "edge")}/{(Level ? "assert" : "deassert")}" +
        (Shorthand != DestinationShorthand.None ? $" {Shorthand}" : $" {(Logical ? "logical" : "physical")} dest 0x{Destination:x}");
}
