namespace DynaSmp.Machine.Devices;

/// <summary>
/// PCI configuration mechanism #1 at 0xCF8/0xCFC (PCI Local Bus spec 3.2.2.3.2) with the i440FX host bridge at
/// 00:00.0 as QEMU's pc machine has it, and the PIIX3 reset control register at 0xCF9 (bit 2 with bit 1 set: a hard
/// reset). Functions nobody implements read all ones, which is how a guest's bus scan learns they are absent.
/// </summary>
public sealed class PciHostBridge : IPortDevice
{
    public const ushort AddressPort = 0xCF8, ResetControlPort = 0xCF9, DataPort = 0xCFC;

    readonly Lock _sync = new();
    readonly byte[] _hostConfig = new byte[256];
    uint _address;
    byte _resetControl;

    /// <summary>The guest asked for a reset through 0xCF9.</summary>
    public Action? ResetRequested { get; set; }

    public PciHostBridge()
    {
        // i440FX: vendor 8086, device 1237, revision 2, class 06/00/00 (host bridge), header type 0.
        Put16(0x00, 0x8086); Put16(0x02, 0x1237);
        Put16(0x04, 0x0006); Put16(0x06, 0x0280);
        _hostConfig[0x08] = 0x02; _hostConfig[0x0B] = 0x06;
    }

    void Put16(int offset, ushort v) { _hostConfig[offset] = (byte)v; _hostConfig[offset + 1] = (byte)(v >> 8); }

    public int MaxAccessSize => 4;

    public void Map(IoPortMap ports)
    {
        ports.Map(AddressPort, 4, this);
        ports.Map(DataPort, 4, this);
    }

    /// <summary>Bus 0, device 0, function 0: the only function present.</summary>
    static bool IsHostBridge(uint address) => (address & 0x00FF_FF00) == 0;

    public uint PortRead(ushort port, int size)
    {
        lock (_sync)
        {
            if (port == AddressPort && size == 4) return _address;
            if (port == ResetControlPort && size == 1) return _resetControl;
            if (port < DataPort) return (uint)MmioMap.Floating(size);
            if ((_address & 0x8000_0000) == 0) return (uint)MmioMap.Floating(size);
            if (!IsHostBridge(_address)) return (uint)MmioMap.Floating(size);
            int reg = (int)(_address & 0xFC) + (port - DataPort);
            uint v = 0;
            for (int k = 0; k < size && reg + k < 256; k++) v |= (uint)_hostConfig[reg + k] << (8 * k);
            return v;
        }
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        Action? reset = null;
        lock (_sync)
        {
            if (port == AddressPort && size == 4) { _address = value & 0x80FF_FFFC; return; }
            if (port == ResetControlPort && size == 1)
            {
                if ((value & 0x04) != 0 && (_resetControl & 0x04) == 0) reset = ResetRequested;
                _resetControl = (byte)(value & 0x0A);
            }
            // Config-data writes are ignored: nothing in the host bridge is configurable here.
        }
        reset?.Invoke();
    }
}
