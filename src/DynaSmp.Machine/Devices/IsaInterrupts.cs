namespace DynaSmp.Machine.Devices;

/// <summary>
/// The ISA interrupt lines of a PC, wired as QEMU's pc machine wires them: ISA IRQ n goes to 8259 input n and to
/// IOAPIC pin n, except IRQ 0 (the PIT), which reaches IOAPIC pin 2 (the MADT's interrupt source override 0 -> 2).
/// </summary>
public sealed class IsaInterrupts(Pic8259Pair pic, IoApic ioApic)
{
    public const int Pit = 0, Com1 = 4, Rtc = 8, Sci = 9;

    public static int GsiOf(int irq) => irq == 0 ? 2 : irq;

    public void SetIrq(int irq, bool level)
    {
        pic.SetIrq(irq, level);
        ioApic.SetPin(GsiOf(irq), level);
    }

    /// <summary>The line as a device sees it.</summary>
    public Action<bool> Line(int irq) => level => SetIrq(irq, level);
}
