using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The 16550A's interrupt identification and its IRQ output (data sheet table 4; QEMU's serial.c for
/// when THRE is armed), and the receive path.</summary>
public class Serial16550InterruptTests
{
    const ushort Com1 = 0x3F8, Thr = Com1, Ier = Com1 + 1, Iir = Com1 + 2, Lsr = Com1 + 5;

    static (Serial16550 uart, List<bool> irq) Make()
    {
        var irq = new List<bool>();
        var uart = new Serial16550(Com1) { Irq = irq.Add };
        return (uart, irq);
    }

    [Fact]
    public void Enabling_thre_with_an_empty_thr_interrupts_and_reading_iir_acknowledges()
    {
        var (uart, irq) = Make();
        uart.PortWrite(Ier, 1, 0x02);
        Assert.Equal([true], irq);
        Assert.Equal(0x02u, uart.PortRead(Iir, 1));
        Assert.Equal([true, false], irq);
        Assert.Equal(0x01u, uart.PortRead(Iir, 1)); // acknowledged: nothing pending
    }

    [Fact]
    public void Each_transmitted_byte_gives_a_new_thre_edge()
    {
        var (uart, irq) = Make();
        uart.PortWrite(Ier, 1, 0x02);
        uart.PortRead(Iir, 1);
        irq.Clear();
        uart.PortWrite(Thr, 1, 'a');
        Assert.Equal([true], irq);             // THR emptied at once: one rising edge
        uart.PortRead(Iir, 1);
        uart.PortWrite(Thr, 1, 'b');
        Assert.Equal([true, false, true], irq);
        Assert.Equal("ab", uart.Output);
    }

    [Fact]
    public void Received_data_outranks_thre_and_drains_with_the_fifo()
    {
        var (uart, irq) = Make();
        uart.PortWrite(Ier, 1, 0x03);         // RDA and THRE
        uart.EnqueueInput("hi"u8);
        Assert.Equal(0x04u, uart.PortRead(Iir, 1)); // received data available first
        Assert.Equal(0x61u, uart.PortRead(Lsr, 1));
        Assert.Equal((uint)'h', uart.PortRead(Thr, 1));
        Assert.Equal((uint)'i', uart.PortRead(Thr, 1));
        Assert.Equal(0x02u, uart.PortRead(Iir, 1)); // then the THRE that was waiting
        Assert.False(irq[^1]);
    }

    [Fact]
    public void No_interrupt_enables_means_no_irq()
    {
        var (uart, irq) = Make();
        uart.EnqueueInput("x"u8);
        uart.PortWrite(Thr, 1, 'y');
        Assert.Empty(irq);
        Assert.Equal(0x01u, uart.PortRead(Iir, 1));
    }
}
