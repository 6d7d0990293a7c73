namespace DynaSmp.Machine.Guests;

/// <summary>
/// Physical memory map of the built-in SMP guest (all below 4 MiB, so any RAM size of 4 MiB or more will do).
/// The image occupies <see cref="LoadAddress"/> .. <see cref="LoadAddress"/> + image size; everything else is built at
/// run time by the BSP, which zeroes it first (the image has no BSS, so loaders need no zero-fill).
/// </summary>
public static class GuestLayout
{
    // --- The loaded image: four fixed slots, one ELF PT_LOAD each (the last is cut to its real size). ---
    public const uint LoadAddress = 0x0010_0000;
    public const uint MultibootHeader = LoadAddress;          // 32-byte multiboot v1 header
    public const uint Entry32 = LoadAddress + 0x40;            // multiboot entry, 32-bit protected mode
    public const uint Code64 = LoadAddress + 0x400;            // 64-bit BSP code, secondary_startup_64, start_secondary
    public const uint Data = LoadAddress + 0x1000;             // GDT, GDT pointer, strings
    public const uint TrampolineImage = LoadAddress + 0x1400;  // AP trampoline as stored; the BSP copies it down
    public const uint Gdt = Data;                              // null, 64-bit code, 32-bit code, data
    public const uint GdtPointer = Data + 0x20;                // u16 limit, u64 base (LGDT reads 6 or 10 bytes)

    // --- Selectors shared by the image GDT and the trampoline GDT (Linux's __KERNEL_CS / __KERNEL32_CS / __KERNEL_DS). ---
    public const ushort Code64Selector = 0x08;
    public const ushort Code32Selector = 0x10;
    public const ushort DataSelector = 0x18;

    // --- Phase marks written to MachineInfo.PhasePort (`--stats` records them; QEMU ignores the port). ---
    /// <summary>BSP: in 64-bit mode, UART set up.</summary>
    public const uint PhaseLongMode = 1;
    /// <summary>BSP: the trampoline is in place; the first INIT follows.</summary>
    public const uint PhaseApBringup = 2;
    /// <summary>BSP: every AP was waited for; the summary follows.</summary>
    public const uint PhaseApsDone = 3;
    /// <summary>AP: checked in (start_secondary), about to halt.</summary>
    public const uint PhaseApOnline = 4;

    // --- Real-mode trampoline: STARTUP vector 0x08 -> CS = 0x0800, IP = 0. ---
    public const uint TrampolineBase = 0x8000;
    public const byte StartupVector = (byte)(TrampolineBase >> 12);
    public const uint TrStartup32 = 0x100;   // offsets inside the trampoline page
    public const uint TrStartup64 = 0x180;
    public const uint TrStart = 0x1C0;       // u64 64-bit entry (trampoline_header.start), patched by the BSP
    public const uint TrEfer = 0x1C8;        // u64 EFER to load, patched by the BSP
    public const uint TrCr4 = 0x1D0;         // u32 CR4 to load, patched by the BSP
    public const uint TrCr3 = 0x1D4;         // u32 CR3 to load, patched by the BSP
    public const uint TrIdtPointer = 0x1E0;  // limit 0, base 0
    public const uint TrGdtPointer = 0x1E8;  // u16 limit, u32 base (base patched by the BSP)
    public const uint TrGdt = 0x200;
    public const uint TrSize = 0x220;        // bytes the BSP copies
    public const uint TrStackTop = 0x1000;   // real-mode SP (SS = 0x0800) and 32-bit ESP - TrampolineBase

    // --- Built at run time by the BSP. ---
    public const uint Pml4 = 0x0018_0000;
    public const uint Pdpt = 0x0018_1000;
    public const uint Pd0 = 0x0018_2000;     // 0 .. 1 GiB, 2 MiB pages, write-back
    public const uint Pd3 = 0x0018_3000;     // 3 .. 4 GiB: only the LAPIC page 0xFEE00000, PCD|PWT
    public const uint SmpData = 0x0018_4000;
    public const uint OnlineCount = SmpData + 0x00;   // u32, LOCK INC by each AP
    public const uint NbCpus = SmpData + 0x08;        // u32, from fw_cfg
    public const uint TscPerUs = SmpData + 0x10;      // u64, TSC ticks per microsecond (the guest's estimate)
    public const uint OnlineMask = SmpData + 0x40;    // 256 bits, LOCK BTS by each AP
    public const uint OnlineFlags = SmpData + 0x100;  // u8[256], per-AP check-in flag
    public const uint ApStackTable = SmpData + 0x800; // u64[256], initial RSP per APIC ID (0 = not expected)
    public const uint RuntimeZeroEnd = SmpData + 0x1000;
    public const uint BspStackTop = 0x0018_C000;
    public const uint ApStacks = 0x0020_0000;         // AP n: [ApStacks + n*4K, ApStacks + (n+1)*4K)
    public const uint ApStackSize = 0x1000;

    public const uint LapicBase = 0xFEE0_0000;
    public const int MaxCpus = 255;                   // xAPIC IDs are 8 bits and 0xFF is the broadcast ID
    public const uint ApWaitSpinLimit = 0x1000_0000;

    /// <summary>Exit values written to the isa-debug-exit port (QEMU exits with (value &lt;&lt; 1) | 1).</summary>
    public const uint ExitSuccess = 0, ExitSomeApMissing = 1, ExitNoFwCfg = 2;
}
