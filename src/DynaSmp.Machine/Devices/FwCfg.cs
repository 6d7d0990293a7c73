using System.Buffers.Binary;
using System.Text;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// QEMU's firmware configuration device, traditional (non-DMA) I/O port interface, per QEMU docs/specs/fw_cfg.rst:
/// a 16-bit write to the selector (0x510) picks an item and rewinds its data offset to 0; each 8-bit read of the
/// data port (0x511) returns the next byte of the item, and 0 once past its end (or for an item that does not
/// exist). Numeric items are little-endian; the file directory (key 0x19) is big-endian.
/// Like QEMU's combined x86 port, any 16-bit write selects and any 8-bit read returns data; 8-bit data writes are
/// ignored (QEMU 2.4+), and other widths are invalid (reads return all ones without advancing).
/// </summary>
public sealed class FwCfg : IPortDevice
{
    public const int PortCount = 2;

    public const ushort Signature = 0x0000, Id = 0x0001, Uuid = 0x0002, RamSize = 0x0003, NbCpus = 0x0005,
        MaxCpus = 0x000F, FileDir = 0x0019, FileFirst = 0x0020;

    // Bit 14 selects the (obsolete) write channel and does not change which item is read: QEMU masks it off
    // (FW_CFG_ENTRY_MASK keeps bits 0-13 and the arch-local bit 15).
    const ushort WriteChannel = 0x4000;

    readonly Lock _sync = new();
    readonly Dictionary<ushort, byte[]> _items = new();
    readonly List<(string Name, ushort Key, int Size)> _files = new();

    byte[]? _current;
    int _offset;

    public FwCfg(ushort basePort = MachineInfo.FwCfgSelectorPort, int cpuCount = 1, ulong ramSize = 0, int maxCpus = 0)
    {
        if (cpuCount is < 1 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(cpuCount));
        if (maxCpus == 0) maxCpus = cpuCount;
        if (maxCpus < cpuCount || maxCpus > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(maxCpus));
        BasePort = basePort;
        SetItem(Signature, "QEMU"u8.ToArray());
        SetItem(Id, U32(1)); // bit 0: traditional interface; bit 1 (DMA) clear: no DMA address register
        SetItem(RamSize, U64(ramSize));
        SetItem(NbCpus, U16((ushort)cpuCount));
        SetItem(MaxCpus, U16((ushort)maxCpus));
        SetItem(FileDir, BuildDirectory());
    }

    public ushort BasePort { get; }

    public int MaxAccessSize => 2;

    /// <summary>Sets (or replaces) the item at <paramref name="key"/>; a copy of <paramref name="data"/> is kept.</summary>
    public void SetItem(ushort key, ReadOnlySpan<byte> data)
    {
        lock (_sync) _items[(ushort)(key & ~WriteChannel)] = data.ToArray();
    }

    /// <summary>Adds a named file item at the next free key from 0x20 and lists it in the file directory; returns its key.</summary>
    public ushort AddFile(string name, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || Encoding.ASCII.GetByteCount(name) > 55) throw new ArgumentException("fw_cfg file names are 1..55 ASCII characters", nameof(name));
        lock (_sync)
        {
            foreach (var f in _files)
                if (f.Name == name) throw new ArgumentException($"fw_cfg file '{name}' already exists", nameof(name));
            ushort key = (ushort)(FileFirst + _files.Count);
            _files.Add((name, key, data.Length));
            _items[key] = data.ToArray();
            _items[FileDir] = BuildDirectory();
            return key;
        }
    }

    public uint PortRead(ushort port, int size)
    {
        if (size != 1) return size == 2 ? 0xFFFFu : 0xFFFF_FFFFu;
        lock (_sync)
        {
            byte[]? item = _current;
            if (item is null || _offset >= item.Length) return 0;
            return item[_offset++];
        }
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        if (size != 2) return; // 8-bit: data-register write, ignored since QEMU 2.4
        lock (_sync)
        {
            _items.TryGetValue((ushort)(value & ~WriteChannel), out _current);
            _offset = 0;
        }
    }

    // struct FWCfgFiles { be32 count; struct FWCfgFile { be32 size; be16 select; u16 reserved; char name[56]; } f[]; }
    byte[] BuildDirectory()
    {
        var dir = new byte[4 + 64 * _files.Count];
        BinaryPrimitives.WriteUInt32BigEndian(dir, (uint)_files.Count);
        for (int i = 0; i < _files.Count; i++)
        {
            var e = dir.AsSpan(4 + 64 * i, 64);
            BinaryPrimitives.WriteUInt32BigEndian(e, (uint)_files[i].Size);
            BinaryPrimitives.WriteUInt16BigEndian(e[4..], _files[i].Key);
            Encoding.ASCII.GetBytes(_files[i].Name, e[8..]);
        }
        return dir;
    }

    static byte[] U16(ushort v) { var b = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(b, v); return b; }
    static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }
    static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
}
