namespace DynaSmp.Jit.Memory;

/// <summary>#PF error-code bits (Intel SDM Vol. 3A 4.7, Figure 4-12).</summary>
public static class PageFaultError
{
    /// <summary>0: the fault was caused by a non-present page; 1: by a protection violation or reserved bit.</summary>
    public const ulong P = 1 << 0;
    /// <summary>The access was a write.</summary>
    public const ulong W = 1 << 1;
    /// <summary>The access was a user-mode access (CPL 3, not an implicit supervisor access).</summary>
    public const ulong U = 1 << 2;
    /// <summary>A reserved bit was set in some paging-structure entry.</summary>
    public const ulong Rsvd = 1 << 3;
    /// <summary>Instruction fetch, reported only when CR4.SMEP = 1 or (PAE/4-level paging and EFER.NXE = 1).</summary>
    public const ulong ID = 1 << 4;
}

/// <summary>Paging-structure entry bits and the paging-related CR4 bits (SDM Vol. 3A 4.2, 4.3-4.5, 2.5).</summary>
public static class PagingBits
{
    public const ulong Present = 1 << 0, Writable = 1 << 1, User = 1 << 2, Accessed = 1 << 5, Dirty = 1 << 6,
        PageSize = 1 << 7, Global = 1 << 8, ExecuteDisable = 1UL << 63;

    /// <summary>CPUID.80000008H:EAX[7:0]: physical-address width the CPU reports.</summary>
    public const int MaxPhysAddr = 40;
    /// <summary>Bits M-1:12 of an entry (PAE and 4-level): the physical address of the next table or page.</summary>
    public const ulong AddressMask = ((1UL << MaxPhysAddr) - 1) & ~0xFFFUL;
    /// <summary>Bits 51:M, reserved in every PAE and 4-level entry.</summary>
    public const ulong ReservedHighPhys = ((1UL << 52) - 1) & ~((1UL << MaxPhysAddr) - 1);

    public const ulong Cr4Pse = 1 << 4, Cr4Pae = 1 << 5, Cr4Pge = 1 << 7, Cr4Pcide = 1 << 17,
        Cr4Smep = 1 << 20, Cr4Smap = 1 << 21, Cr4La57 = 1 << 12;
}
