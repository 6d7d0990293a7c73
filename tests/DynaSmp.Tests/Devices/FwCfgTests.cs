using DynaSmp.Machine;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

public class FwCfgTests
{
    const ushort Sel = MachineInfo.FwCfgSelectorPort, Data = MachineInfo.FwCfgDataPort;

    static IoPortMap Make(FwCfg dev)
    {
        var map = new IoPortMap();
        map.Map(Sel, FwCfg.PortCount, dev);
        return map;
    }

    static byte[] Read(IoPortMap map, ushort key, int n)
    {
        map.Write(Sel, 2, key);
        return ReadMore(map, n);
    }

    static byte[] ReadMore(IoPortMap map, int n)
    {
        var b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte)map.Read(Data, 1);
        return b;
    }

    [Fact]
    public void Signature_is_QEMU_then_zeros()
    {
        var map = Make(new FwCfg());
        Assert.Equal(new byte[] { (byte)'Q', (byte)'E', (byte)'M', (byte)'U', 0, 0 }, Read(map, FwCfg.Signature, 6));
    }

    [Fact]
    public void Id_is_traditional_interface_only()
    {
        var map = Make(new FwCfg());
        Assert.Equal(new byte[] { 1, 0, 0, 0, 0 }, Read(map, FwCfg.Id, 5));
    }

    [Fact]
    public void Cpu_counts_are_16_bit_little_endian()
    {
        var map = Make(new FwCfg(cpuCount: 0x103, maxCpus: 0x208));
        Assert.Equal(new byte[] { 0x03, 0x01, 0 }, Read(map, FwCfg.NbCpus, 3));
        Assert.Equal(new byte[] { 0x08, 0x02, 0 }, Read(map, FwCfg.MaxCpus, 3));
    }

    [Fact]
    public void Ram_size_is_64_bit_little_endian()
    {
        var map = Make(new FwCfg(ramSize: 0x1_2345_6000));
        Assert.Equal(new byte[] { 0x00, 0x60, 0x45, 0x23, 0x01, 0, 0, 0, 0 }, Read(map, FwCfg.RamSize, 9));
    }

    [Fact]
    public void Empty_file_directory_is_a_zero_big_endian_count()
    {
        var map = Make(new FwCfg());
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, Read(map, FwCfg.FileDir, 5));
    }

    [Fact]
    public void Selecting_rewinds_the_offset()
    {
        var map = Make(new FwCfg());
        Assert.Equal("QE"u8.ToArray(), Read(map, FwCfg.Signature, 2));
        Assert.Equal("QEMU"u8.ToArray(), Read(map, FwCfg.Signature, 4));
    }

    [Fact]
    public void Unknown_keys_read_zero()
    {
        var map = Make(new FwCfg());
        Assert.Equal(new byte[4], Read(map, 0x1234, 4));
    }

    [Fact]
    public void Write_channel_bit_selects_the_same_item()
    {
        var map = Make(new FwCfg());
        Assert.Equal("QEMU"u8.ToArray(), Read(map, 0x4000, 4));
    }

    [Fact]
    public void Data_writes_are_ignored_and_wide_data_reads_are_invalid()
    {
        var map = Make(new FwCfg());
        map.Write(Sel, 2, FwCfg.Signature);
        map.Write(Data, 1, 0x55);        // ignored: does not advance or change the item
        Assert.Equal(0xFFFFu, map.Read(Sel, 2)); // 16-bit read: invalid, does not advance
        Assert.Equal("QEMU"u8.ToArray(), ReadMore(map, 4));
    }

    [Fact]
    public void Files_are_listed_big_endian_in_the_directory()
    {
        var dev = new FwCfg();
        ushort key = dev.AddFile("opt/dynasmp/test", new byte[] { 9, 8, 7 });
        Assert.Equal(FwCfg.FileFirst, key);
        var map = Make(dev);
        byte[] dir = Read(map, FwCfg.FileDir, 4 + 64 + 1);
        Assert.Equal(new byte[] { 0, 0, 0, 1 }, dir[..4]);
        Assert.Equal(new byte[] { 0, 0, 0, 3 }, dir[4..8]);    // size
        Assert.Equal(new byte[] { 0x00, 0x20 }, dir[8..10]);   // select
        Assert.Equal(new byte[] { 0, 0 }, dir[10..12]);        // reserved
        Assert.Equal("opt/dynasmp/test"u8.ToArray(), dir[12..28]);
        Assert.Equal(0, dir[28]);                              // NUL-terminated
        Assert.Equal(0, dir[68]);                              // past the end
        Assert.Equal(new byte[] { 9, 8, 7, 0 }, Read(map, key, 4));
    }
}
