namespace DynaSmp.Machine.Apic;

/// <summary>ICR delivery mode, bits 10:8 (SDM Vol. 3A 11.6.1).</summary>
public enum DeliveryMode
{
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    /// <summary>Reserved (remote read); KVM reuses it as the PV unhalt kick.</summary>
    RemoteRead = 3,
    Nmi = 4,
    Init = 5,
    Startup = 6,
    ExtInt = 7,
}

/// <summary>ICR destination shorthand, bits 19:18.</summary>
public enum DestinationShorthand { None = 0, Self = 1, AllIncludingSelf = 2, AllExcludingSelf = 3 }
