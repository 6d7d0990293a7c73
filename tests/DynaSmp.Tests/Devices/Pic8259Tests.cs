using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The 8259A pair against the Intel 8259A data sheet: initialisation words, IRR/ISR/IMR, fully nested
/// priority, EOI forms, rotation, poll, the cascade and the PIIX ELCR.</summary>
public class Pic8259Tests
{
    static Pic8259Pair Initialised(bool autoEoi = false)
    {
        var pic = new Pic8259Pair();
        // Linux's init_8259A: ICW1 edge + ICW4, ICW2 vector base, ICW3 cascade, ICW4 8086 mode.
        pic.PortWrite(0x20, 1, 0x11); pic.PortWrite(0x21, 1, 0x20); pic.PortWrite(0x21, 1, 0x04); pic.PortWrite(0x21, 1, autoEoi ? 0x03u : 0x01u);
        pic.PortWrite(0xA0, 1, 0x11); pic.PortWrite(0xA1, 1, 0x28); pic.PortWrite(0xA1, 1, 0x02); pic.PortWrite(0xA1, 1, 0x01);
        return pic;
    }

    static uint ReadIsr(Pic8259Pair pic, ushort port) { pic.PortWrite(port, 1, 0x0B); return pic.PortRead(port, 1); }
    static uint ReadIrr(Pic8259Pair pic, ushort port) { pic.PortWrite(port, 1, 0x0A); return pic.PortRead(port, 1); }

    [Fact]
    public void Icw1_clears_the_mask_and_icw2_sets_the_vector_base()
    {
        var pic = new Pic8259Pair();
        pic.PortWrite(0x21, 1, 0xAB);
        Assert.Equal(0xABu, pic.PortRead(0x21, 1));
        pic.PortWrite(0x20, 1, 0x11);
        Assert.Equal(0u, pic.PortRead(0x21, 1));
        pic.PortWrite(0x21, 1, 0x27); // low three bits are ignored
        pic.PortWrite(0x21, 1, 0x04);
        pic.PortWrite(0x21, 1, 0x01);
        Assert.Equal(0x20, pic.Master.VectorBase);
        pic.PortWrite(0x21, 1, 0xFE); // after ICW4, data writes are OCW1
        Assert.Equal(0xFEu, pic.PortRead(0x21, 1));
    }

    [Fact]
    public void Edge_requests_latch_once_and_priority_orders_acknowledge()
    {
        var pic = Initialised();
        pic.SetIrq(5, true); pic.SetIrq(3, true);
        Assert.Equal(0x28u, ReadIrr(pic, 0x20));
        Assert.True(pic.InterruptPending);
        Assert.Equal(0x23, pic.Acknowledge()); // IR3 beats IR5
        Assert.Equal(0x08u, ReadIsr(pic, 0x20));
        Assert.False(pic.InterruptPending); // IR5 is blocked by the in-service IR3
        pic.PortWrite(0x20, 1, 0x20);       // non-specific EOI
        Assert.Equal(0u, ReadIsr(pic, 0x20));
        Assert.Equal(0x25, pic.Acknowledge());
        // A line held high is one edge: no second request until it falls and rises again.
        pic.PortWrite(0x20, 1, 0x20);
        pic.SetIrq(5, true);
        Assert.False(pic.InterruptPending);
        pic.SetIrq(5, false); pic.SetIrq(5, true);
        Assert.True(pic.InterruptPending);
    }

    [Fact]
    public void Higher_priority_request_nests_over_a_lower_one_in_service()
    {
        var pic = Initialised();
        pic.SetIrq(6, true);
        Assert.Equal(0x26, pic.Acknowledge());
        pic.SetIrq(1, true);
        Assert.True(pic.InterruptPending);
        Assert.Equal(0x21, pic.Acknowledge());
        Assert.Equal(0x42u, ReadIsr(pic, 0x20));
        pic.PortWrite(0x20, 1, 0x20); // non-specific EOI retires the highest in service: IR1
        Assert.Equal(0x40u, ReadIsr(pic, 0x20));
        pic.PortWrite(0x20, 1, 0x66); // specific EOI for IR6
        Assert.Equal(0u, ReadIsr(pic, 0x20));
    }

    [Fact]
    public void Masked_requests_wait_in_irr()
    {
        var pic = Initialised();
        pic.PortWrite(0x21, 1, 0x10);
        pic.SetIrq(4, true);
        Assert.False(pic.InterruptPending);
        Assert.Equal(0x10u, ReadIrr(pic, 0x20));
        pic.PortWrite(0x21, 1, 0x00);
        Assert.Equal(0x24, pic.Acknowledge());
    }

    [Fact]
    public void Slave_requests_arrive_through_the_cascade_with_the_slave_vector()
    {
        var pic = Initialised();
        pic.SetIrq(8, true);
        Assert.True(pic.InterruptPending);
        Assert.Equal(0x28, pic.Acknowledge());
        Assert.Equal(0x04u, ReadIsr(pic, 0x20)); // master IR2 in service
        Assert.Equal(0x01u, ReadIsr(pic, 0xA0));
        pic.PortWrite(0xA0, 1, 0x20); pic.PortWrite(0x20, 1, 0x20);
        Assert.Equal(0u, ReadIsr(pic, 0x20) | ReadIsr(pic, 0xA0));
    }

    [Fact]
    public void Spurious_acknowledge_returns_irq7_without_setting_isr()
    {
        var pic = Initialised();
        Assert.Equal(0x27, pic.Acknowledge());
        Assert.Equal(0u, ReadIsr(pic, 0x20));
    }

    [Fact]
    public void Auto_eoi_never_sets_isr()
    {
        var pic = Initialised(autoEoi: true);
        pic.SetIrq(3, true);
        Assert.Equal(0x23, pic.Acknowledge());
        Assert.Equal(0u, ReadIsr(pic, 0x20));
    }

    [Fact]
    public void Rotate_on_eoi_makes_the_serviced_level_lowest()
    {
        var pic = Initialised();
        pic.SetIrq(0, true);
        Assert.Equal(0x20, pic.Acknowledge());
        pic.PortWrite(0x20, 1, 0xA0); // rotate on non-specific EOI: IR0 becomes lowest
        pic.SetIrq(0, false);
        pic.SetIrq(0, true); pic.SetIrq(7, true);
        Assert.Equal(0x27, pic.Acknowledge()); // IR7 now outranks IR0
        Assert.Equal(0, pic.Master.LowestPriority);
    }

    [Fact]
    public void Poll_command_acknowledges_through_a_read()
    {
        var pic = Initialised();
        pic.SetIrq(5, true);
        pic.PortWrite(0x20, 1, 0x0C); // OCW3 poll
        Assert.Equal(0x85u, pic.PortRead(0x20, 1));
        Assert.Equal(0x20u, ReadIsr(pic, 0x20));
    }

    [Fact]
    public void Elcr_makes_inputs_level_sensitive_within_its_mask()
    {
        var pic = Initialised();
        pic.PortWrite(0x4D0, 1, 0xFF); pic.PortWrite(0x4D1, 1, 0xFF);
        Assert.Equal(0xF8u, pic.PortRead(0x4D0, 1)); // IRQ 0-2 are always edge
        Assert.Equal(0xDEu, pic.PortRead(0x4D1, 1)); // IRQ 8 and 13 too
        pic.SetIrq(10, true);
        Assert.Equal(0x2A, pic.Acknowledge());
        pic.PortWrite(0xA0, 1, 0x20); pic.PortWrite(0x20, 1, 0x20);
        // The line is still high: a level input requests again without a new edge.
        Assert.True(pic.InterruptPending);
        // When the line falls before the INTA, the slave's IRR follows it; the master latched the cascade edge, so
        // the acknowledge finds nothing on the slave: its spurious IR7 vector (data sheet: an IR input must stay high
        // until the first INTA).
        pic.SetIrq(10, false);
        Assert.Equal(0u, ReadIrr(pic, 0xA0));
        Assert.Equal(0x2F, pic.Acknowledge());
        Assert.Equal(0u, ReadIsr(pic, 0xA0));
    }

    [Fact]
    public void Firmware_setup_masks_everything_but_the_cascade()
    {
        var pic = new Pic8259Pair();
        pic.InitializeAsFirmware();
        Assert.Equal(0xFBu, pic.PortRead(0x21, 1));
        Assert.Equal(0xFFu, pic.PortRead(0xA1, 1));
        pic.SetIrq(4, true); pic.SetIrq(12, true);
        Assert.False(pic.InterruptPending);
        pic.PortWrite(0x21, 1, 0xEB);
        Assert.Equal(0x0C, pic.Acknowledge()); // vector base 0x08 + IRQ 4
    }

    [Fact]
    public void Rising_intr_notifies_the_machine()
    {
        var pic = Initialised();
        int raised = 0;
        pic.InterruptRaised = () => raised++;
        pic.SetIrq(4, true);
        pic.SetIrq(3, true); // INTR already high: no new notification
        Assert.Equal(1, raised);
    }
}
