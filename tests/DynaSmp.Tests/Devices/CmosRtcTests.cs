using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The MC146818 RTC against its data sheet on a clock the test moves: time registers in BCD and binary,
/// the update cycle (UIP, update-ended flag), the periodic flag and IRQ 8, register C's clear-on-read, SET and the
/// NMI mask bit of port 0x70.</summary>
public class CmosRtcTests
{
    static readonly DateTime Start = new(2026, 12, 5, 13, 59, 58, DateTimeKind.Utc);

    static (CmosRtc rtc, ManualDeviceClock clock, List<bool> irq) Make()
    {
        var clock = new ManualDeviceClock();
        clock.Set(5_000_000_000);
        var irq = new List<bool>();
        return (new CmosRtc(clock, irq.Add, Start, 128UL << 20), clock, irq);
    }

    static uint Read(CmosRtc rtc, int reg) { rtc.PortWrite(0x70, 1, (uint)reg); return rtc.PortRead(0x71, 1); }
    static void Write(CmosRtc rtc, int reg, uint v) { rtc.PortWrite(0x70, 1, (uint)reg); rtc.PortWrite(0x71, 1, v); }

    /// <summary>Seconds, minutes and hours as the registers hold them (BCD here).</summary>
    static void AssertTime(CmosRtc rtc, uint hours, uint minutes, uint seconds) =>
        Assert.Equal((hours, minutes, seconds), (Read(rtc, 4), Read(rtc, 2), Read(rtc, 0)));

    [Fact]
    public void Time_registers_read_bcd_then_advance_with_the_clock()
    {
        var (rtc, clock, _) = Make();
        AssertTime(rtc, 0x13, 0x59, 0x58);
        Assert.Equal(0x05u, Read(rtc, 7));
        Assert.Equal(0x12u, Read(rtc, 8));
        Assert.Equal(0x26u, Read(rtc, 9));
        Assert.Equal(0x20u, Read(rtc, CmosRtc.Century));
        Assert.Equal(0x80u, Read(rtc, CmosRtc.RegD)); // valid RAM and time
        clock.Advance(2_500_000_000);
        AssertTime(rtc, 0x14, 0x00, 0x00);
    }

    [Fact]
    public void Binary_mode_and_12_hour_format()
    {
        var (rtc, clock, _) = Make();
        Write(rtc, CmosRtc.RegB, 0x04);       // binary, 12-hour
        clock.Advance(1_000_000_000);         // an update re-encodes the registers
        Assert.Equal(59u, Read(rtc, 0));
        Assert.Equal(0x81u, Read(rtc, 4));    // 1 PM
    }

    [Fact]
    public void Uip_is_set_only_in_the_last_244us_before_an_update()
    {
        var (rtc, clock, _) = Make();
        Assert.Equal(0u, Read(rtc, CmosRtc.RegA) & 0x80);
        clock.Advance(1_000_000_000 - 100_000);
        Assert.Equal(0x80u, Read(rtc, CmosRtc.RegA) & 0x80);
        clock.Advance(200_000);
        Assert.Equal(0u, Read(rtc, CmosRtc.RegA) & 0x80);
    }

    [Fact]
    public void Periodic_flag_raises_irq8_when_enabled_and_register_c_clears_it()
    {
        var (rtc, clock, irq) = Make();
        Write(rtc, CmosRtc.RegA, 0x26);       // 1024 Hz
        Assert.Equal(long.MaxValue, rtc.NextEventNs); // no interrupt enabled: nothing to schedule
        Write(rtc, CmosRtc.RegB, 0x42);       // PIE, 24-hour
        long next = rtc.NextEventNs;
        Assert.InRange(next - clock.NowNs, 1, 976_563);
        clock.Set(next);
        rtc.Advance(clock.NowNs);
        Assert.Equal([true], irq);
        Assert.Equal(0xC0u, Read(rtc, CmosRtc.RegC) & 0xC0); // IRQF | PF
        Assert.Equal([true, false], irq);
        Assert.Equal(0u, Read(rtc, CmosRtc.RegC));
    }

    [Fact]
    public void Update_ended_flag_is_set_each_second_and_interrupts_only_with_uie()
    {
        var (rtc, clock, irq) = Make();
        clock.Advance(1_000_000_000);
        Assert.Equal(0x10u, Read(rtc, CmosRtc.RegC) & 0x90); // UF without IRQF (PF is set too: it runs without PIE)
        Assert.Empty(irq);
        Write(rtc, CmosRtc.RegB, 0x12);       // UIE
        clock.Advance(1_000_000_000);
        rtc.Advance(clock.NowNs);
        Assert.Equal([true], irq);
        Assert.Equal(0x90u, Read(rtc, CmosRtc.RegC) & 0x90);
    }

    [Fact]
    public void Set_bit_freezes_the_time_and_clearing_it_starts_from_what_was_written()
    {
        var (rtc, clock, _) = Make();
        Write(rtc, CmosRtc.RegB, 0x82);       // SET
        Write(rtc, 0, 0x30); Write(rtc, 2, 0x15); Write(rtc, 4, 0x08);
        clock.Advance(5_000_000_000);
        Assert.Equal(0x30u, Read(rtc, 0));
        Write(rtc, CmosRtc.RegB, 0x02);
        clock.Advance(3_000_000_000);
        AssertTime(rtc, 0x08, 0x15, 0x33);
    }

    [Fact]
    public void Port_0x70_bit7_masks_nmi_and_cmos_ram_holds_the_memory_size()
    {
        var (rtc, _, _) = Make();
        rtc.PortWrite(0x70, 1, 0x8F);
        Assert.True(rtc.NmiMasked);
        rtc.PortWrite(0x71, 1, 0xA5);
        Assert.Equal(0xA5u, Read(rtc, 0x0F));
        Assert.False(rtc.NmiMasked);
        // 128 MiB: 112 MiB above 16 MiB in 64 KiB units = 0x0700.
        Assert.Equal(0x00u, Read(rtc, 0x34));
        Assert.Equal(0x07u, Read(rtc, 0x35));
    }
}
