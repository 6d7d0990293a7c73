using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The 8254 against the Intel 8254 data sheet, on a clock the test moves: counting modes 0, 2 and 3,
/// latch and read-back commands, the lo/hi flip-flop, and port 0x61's gate and OUT2.</summary>
public class Pit8254Tests
{
    const double TickNs = 1e9 / Pit8254.Hz;

    static (Pit8254 pit, ManualDeviceClock clock, List<bool> irq) Make()
    {
        var clock = new ManualDeviceClock();
        clock.Set(1_000_000_000);
        var irq = new List<bool>();
        return (new Pit8254(clock, irq.Add), clock, irq);
    }

    static void Ticks(ManualDeviceClock c, long n) => c.Advance((long)Math.Ceiling(n * TickNs));

    /// <summary>A control word, then the count as its access mode wants it (lo/hi, or LSB only for 0x10 modes).</summary>
    static void Program(Pit8254 pit, byte control, int count)
    {
        ushort port = (ushort)(0x40 + (control >> 6));
        pit.PortWrite(0x43, 1, control);
        pit.PortWrite(port, 1, (uint)(count & 0xFF));
        if ((control & 0x30) == 0x30) pit.PortWrite(port, 1, (uint)(count >> 8));
    }

    /// <summary>Channel 2's output as port 0x61 bit 5 shows it.</summary>
    static bool Out2(Pit8254 pit) => (pit.PortRead(0x61, 1) & 0x20) != 0;

    static int ReadCount(Pit8254 pit, ushort port)
    {
        uint lo = pit.PortRead(port, 1), hi = pit.PortRead(port, 1);
        return (int)(lo | hi << 8);
    }

    [Fact]
    public void Mode0_counts_down_and_raises_out_at_terminal_count()
    {
        var (pit, clock, _) = Make();
        pit.PortWrite(0x61, 1, 0x01);         // gate 2 high
        Program(pit, 0xB0, 1000);           // channel 2, lo/hi, mode 0
        Assert.False(Out2(pit));
        Ticks(clock, 400);
        int c = ReadCount(pit, 0x42);
        Assert.InRange(c, 599, 600);
        Assert.False(Out2(pit));
        Ticks(clock, 601);
        Assert.True(Out2(pit));
    }

    [Fact]
    public void Mode0_first_byte_of_a_lohi_write_stops_the_count()
    {
        var (pit, clock, _) = Make();
        pit.PortWrite(0x61, 1, 0x01);
        Program(pit, 0xB0, 0xA);
        Ticks(clock, 20);
        Assert.True(Out2(pit));
        pit.PortWrite(0x42, 1, 10);           // only the low byte: output drops, counting stops
        Assert.False(Out2(pit));
        pit.PortWrite(0x42, 1, 0);
        Ticks(clock, 5);
        Assert.False(Out2(pit));
    }

    [Fact]
    public void Mode2_reloads_every_period_and_pulses_out_low_for_one_clock()
    {
        var (pit, clock, _) = Make();
        Program(pit, 0x34, 0x64);         // channel 0, lo/hi, mode 2
        Ticks(clock, 30);
        Assert.InRange(ReadCount(pit, 0x40), 69, 70);
        Ticks(clock, 100);                    // one full period later: the same phase
        Assert.InRange(ReadCount(pit, 0x40), 69, 70);
        pit.PortWrite(0x43, 1, 0xE2);         // read-back status of channel 0
        Assert.Equal(0x80u | 0x34, pit.PortRead(0x40, 1)); // OUT high, count loaded, lo/hi, mode 2, binary
    }

    [Fact]
    public void Mode3_is_a_square_wave_half_high_half_low()
    {
        var (pit, clock, _) = Make();
        pit.PortWrite(0x61, 1, 0x01);
        Program(pit, 0xB6, 0x64);         // channel 2, lo/hi, mode 3
        Ticks(clock, 10);
        Assert.True(Out2(pit));
        int c = ReadCount(pit, 0x42);
        Assert.True(c % 2 == 0 && c is >= 78 and <= 82, $"count {c}: decrements by two");
        Ticks(clock, 50);
        Assert.False(Out2(pit));
        Ticks(clock, 50);
        Assert.True(Out2(pit));
    }

    [Fact]
    public void Latch_command_freezes_the_value_until_both_bytes_are_read()
    {
        var (pit, clock, _) = Make();
        Program(pit, 0x30, 0x1000);         // channel 0, lo/hi, mode 0
        Ticks(clock, 0x100);
        pit.PortWrite(0x43, 1, 0x00);         // latch channel 0
        Ticks(clock, 0x200);
        Assert.InRange(ReadCount(pit, 0x40), 0xEFF, 0xF00);
        Assert.InRange(ReadCount(pit, 0x40), 0xCFF, 0xD00); // live again
    }

    [Fact]
    public void Readback_latches_count_and_status_independently()
    {
        var (pit, clock, _) = Make();
        pit.PortWrite(0x61, 1, 0x01);
        Program(pit, 0x90, 0x80);             // channel 2, LSB only, mode 0
        Ticks(clock, 0x10);
        pit.PortWrite(0x43, 1, 0xC8);         // read-back: count and status of channel 2
        Assert.Equal(0x10u, pit.PortRead(0x42, 1)); // status first: OUT low, loaded, LSB, mode 0
        Assert.InRange(pit.PortRead(0x42, 1), 0x6Fu, 0x70u);
    }

    [Fact]
    public void Gate_low_stops_mode2_and_a_rising_gate_restarts_it()
    {
        var (pit, clock, _) = Make();
        pit.PortWrite(0x61, 1, 0x01);
        Program(pit, 0xB4, 0x64);         // channel 2, lo/hi, mode 2
        Ticks(clock, 40);
        pit.PortWrite(0x61, 1, 0x00);
        Ticks(clock, 5);
        pit.PortWrite(0x61, 1, 0x01);         // rising edge: reload
        Assert.Equal(100, ReadCount(pit, 0x42));
        Assert.Equal(1u, pit.PortRead(0x61, 1) & 1);
    }

    [Fact]
    public void Channel0_periodic_mode_raises_irq0_each_period()
    {
        var (pit, clock, irq) = Make();
        Program(pit, 0x34, 0x2E9C); // 11932: 100 Hz
        long first = pit.NextEventNs;
        Assert.InRange(first - clock.NowNs, 9_999_000, 10_001_000);
        clock.Set(first);
        pit.Advance(clock.NowNs);
        Assert.Equal([true, false], irq);     // one pulse
        Assert.InRange(pit.NextEventNs - first, 9_999_000, 10_001_000);
        pit.Advance(clock.NowNs);             // not due again yet
        Assert.Equal(2, irq.Count);
    }
}
