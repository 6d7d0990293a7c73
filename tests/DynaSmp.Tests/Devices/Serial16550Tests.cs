using System.Text;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

public class Serial16550Tests
{
    const ushort Com1 = 0x3F8;
    const ushort Thr = Com1, Ier = Com1 + 1, Iir = Com1 + 2, Lcr = Com1 + 3, Mcr = Com1 + 4, Lsr = Com1 + 5, Msr = Com1 + 6, Scr = Com1 + 7;

    static (IoPortMap, Serial16550) Make(Action<byte>? sink = null)
    {
        var map = new IoPortMap();
        var uart = new Serial16550(Com1, sink);
        map.Map(Com1, Serial16550.PortCount, uart);
        return (map, uart);
    }

    [Fact]
    public void Transmitter_is_always_ready()
    {
        var (map, _) = Make();
        Assert.Equal(0x60u, map.Read(Lsr, 1)); // THRE | TEMT, no data ready
        for (int i = 0; i < 100; i++) map.Write(Thr, 1, (byte)'x');
        Assert.Equal(0x60u, map.Read(Lsr, 1));
    }

    [Fact]
    public void Reset_state_matches_qemu()
    {
        var (map, uart) = Make();
        Assert.Equal(0x08u, map.Read(Mcr, 1)); // OUT2
        Assert.Equal(0xB0u, map.Read(Msr, 1)); // DCD | DSR | CTS
        Assert.Equal(0x01u, map.Read(Iir, 1)); // no interrupt pending
        Assert.Equal(0u, map.Read(Lcr, 1));
        Assert.Equal(0x0C, uart.Divisor);
    }

    [Fact]
    public void Divisor_latch_round_trips_under_DLAB()
    {
        var (map, uart) = Make();
        map.Write(Ier, 1, 0x05);
        map.Write(Lcr, 1, 0x83); // DLAB + 8N1
        map.Write(Thr, 1, 0x01); // DLL
        map.Write(Ier, 1, 0x02); // DLM
        Assert.Equal(0x01u, map.Read(Thr, 1));
        Assert.Equal(0x02u, map.Read(Ier, 1));
        Assert.Equal(0x0201, uart.Divisor);
        Assert.Equal("", uart.Output); // the DLL write transmitted nothing
        map.Write(Lcr, 1, 0x03);
        Assert.Equal(0x05u, map.Read(Ier, 1)); // IER was kept apart from DLM
        Assert.Equal(0x03u, map.Read(Lcr, 1));
        Assert.Equal(0x0201, uart.Divisor);
    }

    [Fact]
    public void Transmitted_bytes_reach_the_sink_and_the_buffer()
    {
        var sunk = new List<byte>();
        var (map, uart) = Make(sunk.Add);
        foreach (byte b in "Hi!\n"u8) map.Write(Thr, 1, b);
        Assert.Equal("Hi!\n", uart.Output);
        Assert.Equal("Hi!\n"u8.ToArray(), sunk.ToArray());
        uart.ClearOutput();
        Assert.Equal("", uart.Output);
    }

    [Fact]
    public void TextWriter_sink_receives_output()
    {
        var sw = new StringWriter();
        var uart = new Serial16550(sw);
        foreach (byte b in "ok\n"u8) uart.PortWrite(Com1, 1, b);
        Assert.Equal("ok\n", sw.ToString());
    }

    [Fact]
    public void Scratch_register_and_fifo_bits()
    {
        var (map, _) = Make();
        map.Write(Scr, 1, 0xA5);
        Assert.Equal(0xA5u, map.Read(Scr, 1));
        map.Write(Iir, 1, 0x07); // FCR: enable and clear FIFOs
        Assert.Equal(0xC1u, map.Read(Iir, 1)); // 16550A with FIFOs enabled, no interrupt
        map.Write(Iir, 1, 0x00);
        Assert.Equal(0x01u, map.Read(Iir, 1));
    }

    [Fact]
    public void Loopback_feeds_the_receiver_and_wires_modem_lines()
    {
        var (map, uart) = Make();
        map.Write(Mcr, 1, 0x10 | 0x03); // LOOP | RTS | DTR
        Assert.Equal(0x30u, map.Read(Msr, 1)); // CTS | DSR
        map.Write(Thr, 1, 0x42);
        Assert.Equal(0x61u, map.Read(Lsr, 1)); // data ready
        Assert.Equal(0x42u, map.Read(Thr, 1));
        Assert.Equal(0x60u, map.Read(Lsr, 1));
        Assert.Equal("", uart.Output);
    }

    [Fact]
    public void Concurrent_writers_do_not_lose_bytes()
    {
        var (map, uart) = Make();
        const int PerThread = 5000;
        var threads = new Thread[4];
        for (int t = 0; t < threads.Length; t++)
        {
            byte ch = (byte)('a' + t);
            threads[t] = new Thread(() => { for (int i = 0; i < PerThread; i++) map.Write(Thr, 1, ch); });
        }
        foreach (var th in threads) th.Start();
        foreach (var th in threads) th.Join();
        string output = uart.Output;
        Assert.Equal(PerThread * threads.Length, output.Length);
        for (int t = 0; t < threads.Length; t++)
            Assert.Equal(PerThread, output.Count(c => c == 'a' + t));
    }

    [Fact]
    public void Input_sets_data_ready_until_read()
    {
        var (map, uart) = Make();
        uart.EnqueueInput(Encoding.ASCII.GetBytes("yz"));
        Assert.Equal(0x61u, map.Read(Lsr, 1));
        Assert.Equal((uint)'y', map.Read(Thr, 1));
        Assert.Equal((uint)'z', map.Read(Thr, 1));
        Assert.Equal(0x60u, map.Read(Lsr, 1));
    }
}
