namespace DynaSmp.Machine.Devices;

/// <summary>
/// The 64 KiB I/O port space: one handler index per port in pages of 256 ports, allocated where a device is mapped
/// (a flat table was 128 KiB per VM, zeroed for every VM of a fleet), so a lookup is two array loads and an access
/// allocates nothing. Unmapped ports float high (reads return all ones, writes are dropped), as on a PC's ISA bus.
/// Mapping happens while the machine is built; accesses may come from any vCPU thread afterwards.
/// </summary>
public sealed class IoPortMap
{
    const int PortCount = 0x10000;

    // 0 = unmapped; otherwise index + 1 into _devices. A null page has no port mapped.
    readonly ushort[]?[] _pages = new ushort[]?[PortCount >> 8];
    readonly List<IPortDevice> _devices = new();

    /// <summary>Maps ports [first, first + count) to <paramref name="device"/>; overlapping an existing mapping is an error.</summary>
    public void Map(ushort first, int count, IPortDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (count <= 0 || first + count > PortCount)
            throw new ArgumentOutOfRangeException(nameof(count), $"ports 0x{first:x}+{count} do not fit the 64 KiB I/O space");
        if (device.MaxAccessSize is not (1 or 2 or 4))
            throw new ArgumentException("MaxAccessSize must be 1, 2 or 4", nameof(device));
        for (int p = first; p < first + count; p++)
            if (Slot(p) != 0)
                throw new InvalidOperationException($"port 0x{p:x} is already mapped to {_devices[Slot(p) - 1].GetType().Name}");
        int index = _devices.IndexOf(device);
        if (index < 0)
        {
            if (_devices.Count >= ushort.MaxValue) throw new InvalidOperationException("too many port devices");
            _devices.Add(device);
            index = _devices.Count - 1;
        }
        for (int p = first; p < first + count; p++) (_pages[p >> 8] ??= new ushort[256])[p & 0xFF] = (ushort)(index + 1);
    }

    int Slot(int port) => _pages[port >> 8] is { } page ? page[port & 0xFF] : 0;

    /// <summary>The device mapped at <paramref name="port"/>, or null.</summary>
    public IPortDevice? DeviceAt(ushort port) => Slot(port) is int s and not 0 ? _devices[s - 1] : null;

    public uint Read(ushort port, int size)
    {
        CheckSize(size);
        int slot = Slot(port);
        if (slot == 0 && size == 1) return 0xFF;
        if (slot != 0 && Whole(slot, port, size, out IPortDevice? d)) return d!.PortRead(port, size);
        // Split into byte cycles, little-endian; each byte goes to whoever decodes that port.
        uint v = 0;
        for (int i = 0; i < size; i++)
        {
            ushort p = (ushort)(port + i);
            int s = Slot(p);
            uint b = s == 0 ? 0xFFu : _devices[s - 1].PortRead(p, 1) & 0xFF;
            v |= b << (8 * i);
        }
        return v;
    }

    public void Write(ushort port, int size, uint value)
    {
        CheckSize(size);
        int slot = Slot(port);
        if (slot == 0 && size == 1) return;
        if (slot != 0 && Whole(slot, port, size, out IPortDevice? d)) { d!.PortWrite(port, size, value); return; }
        for (int i = 0; i < size; i++)
        {
            ushort p = (ushort)(port + i);
            int s = Slot(p);
            if (s != 0) _devices[s - 1].PortWrite(p, 1, (value >> (8 * i)) & 0xFF);
        }
    }

    // The device takes the access whole when it decodes that width and every byte of it falls in its range
    // (QEMU likewise splits an access at a region boundary).
    bool Whole(int slot, ushort port, int size, out IPortDevice? device)
    {
        device = _devices[slot - 1];
        if (size == 1) return true;
        if (size > device.MaxAccessSize) return false;
        int last = port + size - 1;
        return last < PortCount && Slot(last) == slot && (size != 4 || Slot(port + 1) == slot && Slot(port + 2) == slot);
    }

    static void CheckSize(int size)
    {
        if (size is not (1 or 2 or 4)) throw new ArgumentOutOfRangeException(nameof(size), "port accesses are 1, 2 or 4 bytes");
    }
}
