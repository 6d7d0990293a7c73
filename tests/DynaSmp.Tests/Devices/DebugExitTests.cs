using DynaSmp.Machine;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

public class DebugExitTests
{
    [Theory]
    [InlineData(1, 0x00u, 1)]
    [InlineData(1, 0x10u, 0x21)]
    [InlineData(1, 0x1FFu, 0x1FF)] // an 8-bit OUT carries only AL
    [InlineData(2, 0x1234u, 0x2469)]
    [InlineData(4, 0x8000_0000u, 1)] // (v << 1) | 1 truncated to 32 bits, as QEMU's exit(int)
    public void Status_is_value_shifted_left_with_bit_0_set(int size, uint value, int expected)
    {
        var map = new IoPortMap();
        var dev = new DebugExit();
        map.Map(MachineInfo.DebugExitPort, DebugExit.DefaultPortCount, dev);
        Assert.Null(dev.ExitCode);
        map.Write(MachineInfo.DebugExitPort, size, value);
        Assert.Equal(expected, dev.ExitCode);
        Assert.Equal(expected & 0xFF, dev.ProcessExitStatus);
    }

    [Fact]
    public void First_request_wins_and_is_reported_once()
    {
        var dev = new DebugExit();
        var seen = new List<int>();
        dev.ExitRequested += seen.Add;
        dev.PortWrite(0xF4, 1, 3);
        dev.PortWrite(0xF4, 1, 5);
        Assert.Equal(7, dev.ExitCode);
        Assert.Equal(new[] { 7 }, seen);
        Assert.Equal(0u, dev.PortRead(0xF4, 1));
    }
}
