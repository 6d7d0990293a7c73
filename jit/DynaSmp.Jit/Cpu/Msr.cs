namespace DynaSmp.Jit.Cpu;

/// <summary>Model-specific register numbers (Intel SDM Vol. 4, "Architectural MSRs").</summary>
public static class Msr
{
    public const uint Tsc = 0x10;
    public const uint PlatformId = 0x17;
    public const uint ApicBase = 0x1B;
    public const uint FeatureControl = 0x3A;
    /// <summary>IA32_SPEC_CTRL and IA32_PRED_CMD (write-only), enumerated by CPUID.7.EDX[26] (IBRS/IBPB).</summary>
    public const uint SpecCtrl = 0x48, PredCmd = 0x49;
    public const uint BiosSignId = 0x8B;
    public const uint MtrrCap = 0xFE;
    public const uint ArchCapabilities = 0x10A;
    public const uint SysenterCs = 0x174, SysenterEsp = 0x175, SysenterEip = 0x176;
    public const uint MiscEnable = 0x1A0;
    /// <summary>IA32_MTRR_PHYSBASE0; PHYSMASKn = 0x201 + 2n, PHYSBASEn = 0x200 + 2n.</summary>
    public const uint MtrrPhysBase0 = 0x200;
    public const uint MtrrFix64K_00000 = 0x250, MtrrFix16K_80000 = 0x258, MtrrFix16K_A0000 = 0x259;
    /// <summary>IA32_MTRR_FIX4K_C0000 .. IA32_MTRR_FIX4K_F8000 are 0x268 .. 0x26F.</summary>
    public const uint MtrrFix4K_C0000 = 0x268;
    public const uint Pat = 0x277;
    public const uint MtrrDefType = 0x2FF;
    /// <summary>The x2APIC register range (SDM Vol. 3A 11.12.1.2).</summary>
    public const uint X2ApicFirst = 0x800, X2ApicLast = 0x8FF;
    public const uint Efer = 0xC000_0080, Star = 0xC000_0081, Lstar = 0xC000_0082, Cstar = 0xC000_0083,
        Sfmask = 0xC000_0084, FsBase = 0xC000_0100, GsBase = 0xC000_0101, KernelGsBase = 0xC000_0102,
        TscAux = 0xC000_0103;

    /// <summary>Variable MTRR pairs offered in IA32_MTRRCAP.VCNT (CpuState.MtrrVar holds base/mask pairs).</summary>
    public const int VariableMtrrs = 8;
}
