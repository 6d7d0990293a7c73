namespace DynaSmp.Machine.Loaders;

/// <summary>
/// The BSP state at the kernel's entry, per Multiboot 0.6.96 section 3.2 "Machine state": EAX = 0x2BADB002,
/// EBX = physical address of the info structure, CS a 32-bit read/execute segment with base 0 and limit
/// 0xFFFFFFFF, DS/ES/FS/GS/SS read/write segments with base 0 and limit 0xFFFFFFFF, A20 enabled, CR0.PE set and
/// CR0.PG clear, EFLAGS.VM and EFLAGS.IF clear. ESP, GDTR and IDTR are undefined (the kernel sets its own).
/// The selectors are GRUB's (0x08 code, 0x10 data); they are what CpuCore.SetFlat32 uses too.
/// </summary>
public readonly record struct MultibootBootState(uint Eax, uint Ebx, uint Eip)
{
    public const uint BootloaderMagic = 0x2BADB002;
    public const ushort CodeSelector = 0x08, DataSelector = 0x10;
    /// <summary>Only the reserved bit 1: IF and VM clear.</summary>
    public const uint Eflags = 0x2;
    /// <summary>PE | ET; PG clear.</summary>
    public const ulong Cr0 = 0x11;
}
