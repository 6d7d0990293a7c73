namespace DynaSmp.Machine.Devices;

/// <summary>
/// The MMIO ranges of a machine (IOAPIC, HPET, ...): a short array searched linearly, since a PC has a handful of
/// them and a lookup must not allocate. Addresses nobody decodes float high (reads all ones, writes dropped), as an
/// unclaimed PCI/ISA cycle does. Mapping happens while the machine is built; lookups come from any vCPU thread.
/// </summary>
public sealed class MmioMap
{
    readonly record struct Range(ulong Base, ulong Size, IMmioDevice Device);

    Range[] _ranges = [];

    /// <summary>Maps [<paramref name="baseAddress"/>, + <paramref name="size"/>) to <paramref name="device"/>; overlaps are an error.</summary>
    public void Map(ulong baseAddress, ulong size, IMmioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (size == 0 || baseAddress + size < baseAddress) throw new ArgumentOutOfRangeException(nameof(size), $"MMIO range 0x{baseAddress:x}+0x{size:x} is empty or wraps");
        foreach (var r in _ranges)
            if (baseAddress < r.Base + r.Size && r.Base < baseAddress + size)
                throw new InvalidOperationException($"MMIO range 0x{baseAddress:x}+0x{size:x} overlaps {r.Device.GetType().Name} at 0x{r.Base:x}");
        _ranges = [.. _ranges, new Range(baseAddress, size, device)];
    }

    /// <summary>The device whose range holds <paramref name="physical"/>, or null.</summary>
    public IMmioDevice? DeviceAt(ulong physical, out ulong offset)
    {
        foreach (var r in _ranges)
            if (physical - r.Base < r.Size) { offset = physical - r.Base; return r.Device; }
        offset = 0;
        return null;
    }

    public ulong Read(ulong physical, int size)
    {
        var d = DeviceAt(physical, out ulong offset);
        return d != null ? d.MmioRead(offset, size) : Floating(size);
    }

    public void Write(ulong physical, int size, ulong value) => DeviceAt(physical, out ulong offset)?.MmioWrite(offset, size, value);

    /// <summary>All ones of <paramref name="size"/> bytes: what a read nobody claims returns.</summary>
    public static ulong Floating(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
}
