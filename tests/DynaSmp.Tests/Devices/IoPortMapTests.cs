using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

public class IoPortMapTests
{
    [Theory]
    [InlineData(1, 0xFFu)]
    [InlineData(2, 0xFFFFu)]
    [InlineData(4, 0xFFFF_FFFFu)]
    public void Unmapped_ports_float_high(int size, uint expected)
    {
        var map = new IoPortMap();
        map.Map(0x3F8, 8, new Serial16550());
        Assert.Equal(expected, map.Read(0x80, size));
        Assert.Equal(expected, map.Read(0xFFFF, size)); // wraps at the top of the port space without throwing
        map.Write(0x80, size, 0x1234_5678); // dropped
    }

    [Fact]
    public void Overlapping_mappings_are_refused()
    {
        var map = new IoPortMap();
        map.Map(0x3F8, 8, new Serial16550());
        var ex = Assert.Throws<InvalidOperationException>(() => map.Map(0x3FF, 2, new DebugExit()));
        Assert.Contains("0x3ff", ex.Message);
        Assert.Null(map.DeviceAt(0x400)); // the failed mapping left nothing behind
    }

    [Fact]
    public void Wide_access_to_a_byte_device_is_split_little_endian()
    {
        var map = new IoPortMap();
        var uart = new Serial16550();
        map.Map(0x3F8, 8, uart);
        map.Write(0x3FB, 2, 0x1303); // LCR = 0x03, MCR = 0x13 (MCR keeps bits 0-4)
        Assert.Equal(0x1303u, map.Read(0x3FB, 2));
        map.Write(0x3FF, 1, 0x5A);
        Assert.Equal(0xFF5Au, map.Read(0x3FF, 2)); // SCR, then unmapped 0x400
        Assert.Equal(0xFFFF_FF5Au, map.Read(0x3FF, 4));
    }

    [Fact]
    public void Device_gets_the_whole_access_when_it_decodes_that_width()
    {
        var map = new IoPortMap();
        var exit = new DebugExit();
        map.Map(0xF4, 4, exit);
        map.Write(0xF4, 4, 0x0000_0100);
        Assert.Equal(0x201, exit.ExitCode); // one 32-bit write, not four byte writes (the first of which would be 0)
    }
}
