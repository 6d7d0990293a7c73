namespace DynaSmp.Jit.Cpu;

/// <summary>CR4 bits (Intel SDM Vol. 3A 2.5).</summary>
public static class Cr4
{
    public const ulong VME = 1 << 0, PVI = 1 << 1, TSD = 1 << 2, DE = 1 << 3, PSE = 1 << 4, PAE = 1 << 5,
        MCE = 1 << 6, PGE = 1 << 7, PCE = 1 << 8, OSFXSR = 1 << 9, OSXMMEXCPT = 1 << 10, UMIP = 1 << 11,
        LA57 = 1 << 12, VMXE = 1 << 13, SMXE = 1 << 14, FSGSBASE = 1 << 16, PCIDE = 1 << 17, OSXSAVE = 1 << 18,
        SMEP = 1 << 20, SMAP = 1 << 21, PKE = 1 << 22;

    /// <summary>The CR4 bits this CPU implements (and CPUID reports); setting any other bit is #GP(0)
    /// (SDM MOV—Move to/from Control Registers). VME/PVI, DE, UMIP, LA57, VMX/SMX, FSGSBASE, PCID,
    /// XSAVE, SMEP/SMAP and PKE are not modelled.</summary>
    public const ulong Supported = TSD | PSE | PAE | MCE | PGE | PCE | OSFXSR | OSXMMEXCPT;
}
