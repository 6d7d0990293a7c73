namespace DynaSmp.Machine.Firmware;

/// <summary>The e820 address range types a PC BIOS reports (ACPI spec 15, "System Address Map Interfaces").</summary>
public enum E820Type : uint { Ram = 1, Reserved = 2, Acpi = 3, Nvs = 4 }

public readonly record struct E820Entry(ulong Start, ulong Length, E820Type Type)
{
    public ulong End => Start + Length;
}

/// <summary>
/// The physical memory map of this PC, as both loaders report it (Multiboot's mmap and Linux's e820 table): RAM below
/// 640 KiB, the legacy VGA/BIOS hole (which holds the firmware tables at 0xE0000-0xFFFFF), RAM from 1 MiB; RAM reaching
/// the IOAPIC/LAPIC window stops below it and resumes at 4 GiB, since the machine decodes those addresses as devices.
/// </summary>
public static class PcMemoryMap
{
    public const ulong LowMemoryTop = 0xA0000, HighMemoryStart = 0x100000, FourGiB = 1UL << 32;
    /// <summary>The BIOS area where ACPI and MP tables live (reserved in the map).</summary>
    public const ulong FirmwareStart = 0xE0000, FirmwareEnd = 0x100000;

    public static List<E820Entry> Build(ulong ramSize)
    {
        ulong mmioStart = MachineInfo.IoApicBase;
        ulong highTop = Math.Min(ramSize, mmioStart);
        var map = new List<E820Entry>
        {
            new(0, LowMemoryTop, E820Type.Ram),
            new(LowMemoryTop, HighMemoryStart - LowMemoryTop, E820Type.Reserved),
        };
        if (highTop > HighMemoryStart) map.Add(new(HighMemoryStart, highTop - HighMemoryStart, E820Type.Ram));
        if (ramSize > mmioStart)
        {
            map.Add(new(mmioStart, FourGiB - mmioStart, E820Type.Reserved));
            if (ramSize > FourGiB) map.Add(new(FourGiB, ramSize - FourGiB, E820Type.Ram));
        }
        return map;
    }

    /// <summary>The top of the RAM that starts at 1 MiB (where the first hole above it begins).</summary>
    public static ulong HighRamTop(ulong ramSize) => Math.Min(ramSize, MachineInfo.IoApicBase);
}
