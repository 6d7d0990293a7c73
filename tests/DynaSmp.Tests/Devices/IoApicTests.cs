using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The IOAPIC's register interface and delivery rules (82093AA data sheet; QEMU's ioapic.c for the version
/// 0x20 EOI register and for edges arriving while masked).</summary>
public class IoApicTests
{
    static (IoApic io, List<ApicMessage> sent) Make()
    {
        var sent = new List<ApicMessage>();
        return (new IoApic(sent.Add), sent);
    }

    static void WriteEntry(IoApic io, int pin, ulong entry)
    {
        io.MmioWrite(0x00, 4, (ulong)(0x10 + 2 * pin)); io.MmioWrite(0x10, 4, (uint)entry);
        io.MmioWrite(0x00, 4, (ulong)(0x11 + 2 * pin)); io.MmioWrite(0x10, 4, entry >> 32);
    }

    static ulong ReadEntry(IoApic io, int pin)
    {
        io.MmioWrite(0x00, 4, (ulong)(0x10 + 2 * pin)); ulong lo = io.MmioRead(0x10, 4);
        io.MmioWrite(0x00, 4, (ulong)(0x11 + 2 * pin)); return lo | io.MmioRead(0x10, 4) << 32;
    }

    [Fact]
    public void Version_register_reports_24_pins_and_version_0x20_and_entries_reset_masked()
    {
        var (io, _) = Make();
        io.MmioWrite(0x00, 4, 1);
        Assert.Equal(0x0017_0020UL, io.MmioRead(0x10, 4));
        for (int pin = 0; pin < IoApic.Pins; pin++) Assert.Equal(1UL << 16, ReadEntry(io, pin));
        io.MmioWrite(0x00, 4, 0);
        io.MmioWrite(0x10, 4, 0x0500_0000);
        Assert.Equal(0x0500_0000UL, io.MmioRead(0x10, 4));
    }

    [Fact]
    public void Redirection_entry_round_trips_except_read_only_bits()
    {
        var (io, _) = Make();
        WriteEntry(io, 3, 0x0300_0000_0000_D931UL | 1UL << 12 | 1UL << 14); // delivery status and remote IRR are read-only
        Assert.Equal(0x0300_0000_0000_8931UL, ReadEntry(io, 3)); // level, logical, lowest priority, vector 0x31
    }

    [Fact]
    public void Edge_pin_delivers_on_the_rising_edge_only()
    {
        var (io, sent) = Make();
        WriteEntry(io, 4, 0x0100_0000_0000_0031UL); // vector 0x31, fixed, physical dest 1, edge, unmasked
        io.SetPin(4, true);
        io.SetPin(4, true);
        Assert.Single(sent);
        Assert.Equal(new ApicMessage(1, false, DeliveryMode.Fixed, 0x31, false), sent[0]);
        io.SetPin(4, false); io.SetPin(4, true);
        Assert.Equal(2, sent.Count);
    }

    [Fact]
    public void Edge_arriving_while_masked_is_delivered_on_unmask()
    {
        var (io, sent) = Make();
        WriteEntry(io, 2, 0x0000_0000_0001_0030UL);
        io.SetPin(2, true); io.SetPin(2, false);
        Assert.Empty(sent);
        WriteEntry(io, 2, 0x0000_0000_0000_0030UL);
        Assert.Single(sent);
    }

    [Fact]
    public void Level_pin_sets_remote_irr_until_eoi_and_redelivers_while_asserted()
    {
        var (io, sent) = Make();
        WriteEntry(io, 9, 0x0000_0000_0000_8041UL); // level, vector 0x41
        io.SetPin(9, true);
        Assert.Single(sent);
        Assert.True(sent[0].LevelTriggered);
        Assert.NotEqual(0UL, ReadEntry(io, 9) & 1UL << 14);
        io.SetPin(9, true);
        Assert.Single(sent);                  // remote IRR holds further deliveries
        io.Eoi(0x42);
        Assert.Single(sent);                  // another vector's EOI changes nothing
        io.Eoi(0x41);
        Assert.Equal(2, sent.Count);          // still asserted: delivered again, remote IRR set again
        Assert.NotEqual(0UL, ReadEntry(io, 9) & 1UL << 14);
        io.SetPin(9, false);
        io.MmioWrite(0x40, 4, 0x41);          // the version-0x20 EOI register
        Assert.Equal(0UL, ReadEntry(io, 9) & 1UL << 14);
        Assert.Equal(2, sent.Count);
    }

    [Fact]
    public void Active_low_level_pin_asserts_at_zero()
    {
        var (io, sent) = Make();
        io.SetPin(11, true);                  // idle high
        WriteEntry(io, 11, 0x0000_0000_0000_A050UL); // level, active low, vector 0x50
        Assert.Empty(sent);
        io.SetPin(11, false);
        Assert.Single(sent);
    }
}
