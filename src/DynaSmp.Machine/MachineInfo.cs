namespace DynaSmp.Machine;

/// <summary>Fixed facts of the PC the machine models (QEMU's conventions, so the same images run on both).</summary>
public static class MachineInfo
{
    public const ulong LapicDefaultBase = 0xFEE0_0000;
    public const ulong IoApicBase = 0xFEC0_0000;
    public const ushort SerialPort = 0x3F8;
    public const ushort DebugExitPort = 0xF4;
    public const ushort FwCfgSelectorPort = 0x510;
    public const ushort FwCfgDataPort = 0x511;
    /// <summary>Guest phase marks for `--stats`: a write of a phase number here is recorded with the writing vCPU's
    /// retired instructions and the VM clock. Nothing is mapped there on QEMU's PC, so the same guest runs unchanged.</summary>
    public const ushort PhasePort = 0xF8;
}
