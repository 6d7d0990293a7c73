using DynaSmp.Machine;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Platform;

/// <summary>The HPET against the IA-PC HPET 1.0a specification (and QEMU's choices where it leaves room) on a clock the
/// test moves: capabilities, the 100 MHz main counter and its 32-bit halves, one-shot and periodic comparators (the
/// Tn_VAL_SET_CNF accumulator rule), 32-bit timer mode, level interrupts with the write-1-to-clear status register,
/// and the legacy replacement route, which also cuts off the PIT's IRQ 0 and the RTC's IRQ 8.</summary>
public class HpetTests
{
    const ulong Cap = 0x000, Config = 0x010, Status = 0x020, Counter = 0x0F0;
    const ulong Enable = 1, LegacyRoute = 2;
    const ulong Level = 1 << 1, IntEnb = 1 << 2, Periodic = 1 << 3, ValSet = 1 << 6, Mode32 = 1 << 8, Route2 = 2 << 9;

    static ulong TimerConfig(int n) => 0x100 + 0x20 * (ulong)n;
    static ulong Comparator(int n) => 0x108 + 0x20 * (ulong)n;

    /// <summary>Every line change the device makes: ("pic", irq, level) or ("ioapic", pin, level).</summary>
    sealed class Lines
    {
        public readonly List<(string Chip, int Line, bool Level)> Log = [];
        public void Pic(int irq, bool level) => Log.Add(("pic", irq, level));
        public void IoApic(int pin, bool level) => Log.Add(("ioapic", pin, level));
        public int Rises(string chip, int line) => Log.Count(e => e.Chip == chip && e.Line == line && e.Level);
        public bool LevelOf(string chip, int line) => Log.LastOrDefault(e => e.Chip == chip && e.Line == line).Level;
    }

    static (Hpet hpet, ManualDeviceClock clock, Lines lines) Make()
    {
        var clock = new ManualDeviceClock();
        clock.Set(7_000_000_000);
        var lines = new Lines();
        return (new Hpet(clock, lines.Pic, lines.IoApic), clock, lines);
    }

    static ulong R32(Hpet h, ulong at) => h.MmioRead(at, 4);
    static ulong R64(Hpet h, ulong at) => h.MmioRead(at, 8);
    static void W32(Hpet h, ulong at, ulong v) => h.MmioWrite(at, 4, v);
    static void W64(Hpet h, ulong at, ulong v) => h.MmioWrite(at, 8, v);

    /// <summary>Lets the device timer thread's work happen: <see cref="ITimedDevice.Advance"/> at the clock's now.</summary>
    static void Tick(Hpet h, ManualDeviceClock clock, long ns)
    {
        clock.Advance(ns);
        h.Advance(clock.NowNs);
    }

    [Fact]
    public void Capabilities_are_qemus_three_64bit_comparators_at_100_mhz_with_the_legacy_route()
    {
        var (h, _, _) = Make();
        Assert.Equal(0x0098_9680_8086_A201UL, R64(h, Cap)); // period 10,000,000 fs; 8086, LEG_RT_CAP, 64-bit, NUM_TIM_CAP 2, rev 1
        Assert.Equal(10_000_000UL, R32(h, Cap + 4));
        for (int n = 0; n < Hpet.Timers; n++)
        {
            ulong tc = R64(h, TimerConfig(n));
            Assert.Equal(0x4UL, tc >> 32);          // Tn_INT_ROUTE_CAP: IOAPIC input 2 (QEMU's i440FX pc)
            Assert.Equal(0x30UL, tc & 0xFFFF_FFFF); // periodic and 64-bit capable, everything off, no FSB
            Assert.Equal(ulong.MaxValue, R64(h, Comparator(n)));
        }
        Assert.Equal(0UL, R64(h, Config));
        Assert.Equal(0UL, R64(h, Counter));
    }

    [Fact]
    public void Main_counter_runs_at_100_mhz_only_while_enabled_and_reads_in_32_bit_halves()
    {
        var (h, clock, _) = Make();
        clock.Advance(1_000_000);
        Assert.Equal(0UL, R64(h, Counter)); // halted
        W32(h, Counter, 0xFFFF_FFF0);
        W32(h, Counter + 4, 0x1);
        Assert.Equal(0x1_FFFF_FFF0UL, R64(h, Counter));
        W32(h, Config, Enable);
        clock.Advance(200); // 20 ticks of 10 ns
        Assert.Equal(0x2_0000_0004UL, R64(h, Counter));
        Assert.Equal(0x4UL, R32(h, Counter));
        Assert.Equal(0x2UL, R32(h, Counter + 4));
        clock.Advance(1_000_000);
        Assert.Equal(0x2_0000_0004UL + 100_000, R64(h, Counter)); // 1 ms = 100,000 ticks
        W64(h, Counter, 5); // dropped while running (the specification allows writes only while halted)
        Assert.Equal(0x2_0000_0004UL + 100_000, R64(h, Counter));
        W32(h, Config, 0);
        ulong held = R64(h, Counter);
        clock.Advance(5_000_000);
        Assert.Equal(held, R64(h, Counter));
    }

    [Fact]
    public void One_shot_comparator_interrupts_once_when_the_counter_reaches_it()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), IntEnb | Route2);
        W64(h, Comparator(2), 1000);
        W32(h, Config, Enable);
        Assert.Equal(7_000_000_000 + 10_000, h.NextEventNs);
        Tick(h, clock, 9_990);
        Assert.Equal(0, lines.Rises("ioapic", 2));
        Tick(h, clock, 10);
        Assert.Equal(1, lines.Rises("ioapic", 2));
        Assert.False(lines.LevelOf("ioapic", 2)); // an edge: raised and lowered
        Assert.Equal(0UL, R64(h, Status));       // edge mode does not use the status bit
        Tick(h, clock, 100_000_000);
        Assert.Equal(1, lines.Rises("ioapic", 2));
        Assert.Equal(1000UL, R64(h, Comparator(2))); // a one-shot comparator keeps its value
        Assert.Equal(long.MaxValue, h.NextEventNs);

        // A 64-bit comparator already behind the counter waits for the counter to wrap: never.
        W64(h, Comparator(2), 5);
        Tick(h, clock, 1_000_000);
        Assert.Equal(1, lines.Rises("ioapic", 2));
    }

    [Fact]
    public void Periodic_write_with_val_set_loads_the_accumulator_and_a_plain_write_only_the_period()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), IntEnb | Periodic | ValSet | Route2);
        W64(h, Comparator(2), 1000); // Tn_VAL_SET_CNF: accumulator and period
        Assert.Equal(0UL, R32(h, TimerConfig(2)) & ValSet); // the bit clears itself
        W64(h, Comparator(2), 250);  // period only
        Assert.Equal(1000UL, R64(h, Comparator(2)));
        W32(h, Config, Enable);
        Tick(h, clock, 10_000);      // counter 1000: match; the comparator advances by the period
        Assert.Equal(1, lines.Rises("ioapic", 2));
        Assert.Equal(1250UL, R64(h, Comparator(2)));
        Tick(h, clock, 2_490);
        Assert.Equal(1, lines.Rises("ioapic", 2));
        Tick(h, clock, 10);
        Assert.Equal(2, lines.Rises("ioapic", 2));
        Assert.Equal(1500UL, R64(h, Comparator(2)));

        // Periods missed while nobody looked are coalesced into one interrupt, and the comparator is past the counter.
        Tick(h, clock, 10 * 2_500 + 100);
        Assert.Equal(3, lines.Rises("ioapic", 2));
        Assert.Equal(1500UL + 10 * 250, R64(h, Comparator(2))); // counter 3760: matches 1500..3750 taken
        Assert.True(R64(h, Comparator(2)) > R64(h, Counter));
    }

    [Fact]
    public void Periodic_64bit_write_in_halves_with_val_set_before_each()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), IntEnb | Periodic | Route2);
        W32(h, TimerConfig(2), IntEnb | Periodic | Route2 | ValSet);
        W32(h, Comparator(2), 0x100);
        W32(h, TimerConfig(2), IntEnb | Periodic | Route2 | ValSet);
        W32(h, Comparator(2) + 4, 0);
        Assert.Equal(0x100UL, R64(h, Comparator(2)));
        W32(h, Config, Enable);
        Tick(h, clock, 0x100 * 10);
        Assert.Equal(1, lines.Rises("ioapic", 2));
        Assert.Equal(0x200UL, R64(h, Comparator(2)));
    }

    [Fact]
    public void Mode_32_matches_the_low_half_of_the_counter_and_truncates_the_comparator()
    {
        var (h, clock, lines) = Make();
        W64(h, Counter, 0x1_0000_0000);
        W32(h, TimerConfig(2), IntEnb | Mode32 | Route2);
        W64(h, Comparator(2), 0xAB_0000_01F4);
        Assert.Equal(0x1F4UL, R64(h, Comparator(2)));
        W32(h, Config, Enable);
        Tick(h, clock, 0x1F4 * 10);
        Assert.Equal(1, lines.Rises("ioapic", 2));

        // The same comparator as 64-bit is behind the counter and never matches.
        var (h64, clock64, lines64) = Make();
        W64(h64, Counter, 0x1_0000_0000);
        W32(h64, TimerConfig(2), IntEnb | Route2);
        W64(h64, Comparator(2), 0x1F4);
        W32(h64, Config, Enable);
        Tick(h64, clock64, 0x1F4 * 10);
        Assert.Equal(0, lines64.Rises("ioapic", 2));
    }

    [Fact]
    public void Level_interrupt_holds_the_line_until_its_status_bit_is_written_with_1()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), Level | IntEnb | Route2);
        W64(h, Comparator(2), 100);
        W32(h, Config, Enable);
        Tick(h, clock, 1_000);
        Assert.Equal(0b100UL, R64(h, Status));
        Assert.True(lines.LevelOf("ioapic", 2));
        W64(h, Status, 0b011); // other bits: nothing happens
        Assert.Equal(0b100UL, R64(h, Status));
        Assert.True(lines.LevelOf("ioapic", 2));
        W32(h, Status, 0b100);
        Assert.Equal(0UL, R64(h, Status));
        Assert.False(lines.LevelOf("ioapic", 2));
    }

    [Fact]
    public void Level_status_is_set_without_int_enb_and_raises_the_line_once_enabled()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), Level | Route2);
        W64(h, Comparator(2), 100);
        W32(h, Config, Enable);
        clock.Advance(2_000);
        Assert.Equal(0b100UL, R64(h, Status)); // the timer operates and sets status; no interrupt
        Assert.Empty(lines.Log);
        W32(h, TimerConfig(2), Level | IntEnb | Route2);
        Assert.True(lines.LevelOf("ioapic", 2));
    }

    [Fact]
    public void Legacy_route_sends_timer_0_to_irq_0_and_timer_1_to_irq_8()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(0), IntEnb);
        W64(h, Comparator(0), 100);
        W32(h, TimerConfig(1), IntEnb);
        W64(h, Comparator(1), 200);
        W32(h, Config, Enable | LegacyRoute);
        Assert.True(h.LegacyRoute);
        Tick(h, clock, 1_000);
        Assert.Equal(1, lines.Rises("pic", 0));
        Assert.Equal(1, lines.Rises("ioapic", 2)); // IRQ 0 reaches IOAPIC pin 2, as the MADT override says
        Assert.Equal(0, lines.Rises("ioapic", 0));
        Tick(h, clock, 1_000);
        Assert.Equal(1, lines.Rises("pic", 8));
        Assert.Equal(1, lines.Rises("ioapic", 8));
    }

    [Fact]
    public void Legacy_route_cuts_off_the_pit_and_rtc_and_restores_a_pending_rtc_level()
    {
        var (h, _, lines) = Make();
        h.PitIrq(true); h.PitIrq(false);
        Assert.Equal(1, lines.Rises("pic", 0));
        Assert.Equal(1, lines.Rises("ioapic", 2));
        W32(h, Config, LegacyRoute);
        lines.Log.Clear();
        h.PitIrq(true); h.PitIrq(false);
        h.RtcIrq(true);
        Assert.Empty(lines.Log);
        W32(h, Config, 0);
        Assert.True(lines.LevelOf("pic", 8)); // the RTC still holds IRQ 8
        Assert.True(lines.LevelOf("ioapic", 8));
        Assert.Equal(0, lines.Rises("pic", 0));
        h.RtcIrq(false);
        Assert.False(lines.LevelOf("pic", 8));
    }

    [Fact]
    public void Halting_the_counter_stops_matches_and_enabling_resumes_from_the_held_value()
    {
        var (h, clock, lines) = Make();
        W32(h, TimerConfig(2), IntEnb | Route2);
        W64(h, Comparator(2), 1000);
        W32(h, Config, Enable);
        Tick(h, clock, 5_000);
        W32(h, Config, 0);
        Tick(h, clock, 50_000);
        Assert.Equal(0, lines.Rises("ioapic", 2));
        Assert.Equal(500UL, R64(h, Counter));
        W32(h, Config, Enable);
        Tick(h, clock, 4_990);
        Assert.Equal(0, lines.Rises("ioapic", 2));
        Tick(h, clock, 10);
        Assert.Equal(1, lines.Rises("ioapic", 2));
    }

    /// <summary>Counter reads take no lock (a seqlock); halting and restarting it under them must never show a torn
    /// or backward value.</summary>
    [Fact]
    public async Task Lock_free_counter_reads_stay_monotonic_while_the_counter_is_halted_and_restarted()
    {
        var h = new Hpet(HostDeviceClock.Instance, (_, _) => { }, (_, _) => { });
        W32(h, Config, Enable);
        using var stop = new CancellationTokenSource();
        using var started = new CountdownEvent(2);
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(() =>
        {
            ulong last = 0;
            started.Signal();
            while (!stop.IsCancellationRequested)
            {
                ulong v = R64(h, Counter);
                if (v < last) return $"counter went back from {last} to {v}";
                last = v;
            }
            return null;
        }, TaskCreationOptions.LongRunning)).ToArray();
        Assert.True(started.Wait(TimeSpan.FromSeconds(30)));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int k = 0; k < 20_000 || clock.ElapsedMilliseconds < 200; k++) W32(h, Config, (ulong)(k & 1) ^ Enable);
        W32(h, Config, Enable);
        stop.Cancel();
        foreach (var r in readers) Assert.Null(await r);
    }

    [Fact]
    public void Odd_accesses_are_answered_or_dropped_never_thrown()
    {
        var (h, clock, _) = Make();
        Assert.Equal(0x01UL, h.MmioRead(Cap, 1));
        Assert.Equal(0x8086UL, h.MmioRead(Cap + 2, 2));
        Assert.Equal(0x80UL, h.MmioRead(Cap + 3, 1) & 0x80);
        h.MmioWrite(Config, 1, Enable);   // byte writes are dropped
        h.MmioWrite(Config, 2, Enable);
        h.MmioWrite(Config + 2, 4, Enable); // unaligned
        h.MmioWrite(Config + 4, 8, Enable);
        Assert.Equal(0UL, R64(h, Config));
        Assert.Equal(0UL, R64(h, 0x0E0));   // reserved
        Assert.Equal(0UL, R64(h, 0x110));   // FSB route of a timer without FSB delivery
        Assert.Equal(0UL, R64(h, 0x3F8));   // beyond the last timer
        W32(h, TimerConfig(2), 1 << 14 | 5 << 9); // FSB enable and an unoffered route do not stick
        Assert.Equal(0x30UL, R32(h, TimerConfig(2)));

        var random = new Random(15);
        for (int k = 0; k < 20_000; k++)
        {
            ulong offset = (ulong)random.Next(0, 0x420);
            int size = random.Next(0, 10);
            ulong value = (ulong)random.NextInt64();
            if (random.Next(2) == 0) h.MmioWrite(offset, size, value); else h.MmioRead(offset, size);
            clock.Advance(random.Next(0, 100_000));
            h.Advance(clock.NowNs);
            _ = h.NextEventNs;
        }
    }

    [Fact]
    public void Pc_maps_the_hpet_at_0xfed00000_and_routes_the_pit_through_it()
    {
        using var devices = new PcDevices(1, 64UL << 20);
        Assert.Equal(0x8086A201UL, devices.MmioRead(Hpet.BaseAddress, 4));
        Assert.Same(devices.Hpet, devices.Mmio.DeviceAt(Hpet.BaseAddress + 0x3FF, out _));
        Assert.Null(devices.Mmio.DeviceAt(Hpet.BaseAddress + 0x400, out _));
        devices.MmioWrite(Hpet.BaseAddress + Config, 4, LegacyRoute);
        Assert.True(devices.Hpet.LegacyRoute);
    }
}
