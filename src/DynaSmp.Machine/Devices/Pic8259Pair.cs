using DynaSmp.Machine.Apic;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// The PC's cascaded 8259A pair: master at 0x20 (IRQ 0-7), slave at 0xA0 (IRQ 8-15) on master input 2, and the
/// PIIX ELCR at 0x4D0/0x4D1. Its INTR reaches the CPUs through LINT0 in ExtINT mode (<see cref="IExtIntSource"/>).
/// One lock serialises the vCPU threads and the device timer thread.
/// </summary>
public sealed class Pic8259Pair : IPortDevice, IExtIntSource
{
    public const ushort MasterPort = 0x20, SlavePort = 0xA0, ElcrPort = 0x4D0;
    public const int Cascade = 2;

    readonly Lock _sync = new();
    // QEMU's ELCR masks: IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge.
    public Pic8259 Master { get; } = new(0xF8);
    public Pic8259 Slave { get; } = new(0xDE);
    bool _output;

    /// <summary>Called (outside the lock) when INTR rises, so the machine can kick the CPUs listening on LINT0.</summary>
    public Action? InterruptRaised { get; set; }

    public int MaxAccessSize => 1;

    public void Map(IoPortMap ports)
    {
        ports.Map(MasterPort, 2, this);
        ports.Map(SlavePort, 2, this);
        ports.Map(ElcrPort, 2, this);
    }

    /// <summary>What PC firmware leaves before it boots an OS (SeaBIOS pic_setup): vector bases 0x08 and 0x70, every
    /// input masked except the cascade, so a device interrupt cannot reach a guest that never programmed the PICs
    /// (the reset-BSP's LINT0 is ExtINT) until it unmasks it.</summary>
    public void InitializeAsFirmware()
    {
        PortWrite(MasterPort, 1, 0x11); PortWrite(MasterPort + 1, 1, 0x08); PortWrite(MasterPort + 1, 1, 0x04); PortWrite(MasterPort + 1, 1, 0x01);
        PortWrite(SlavePort, 1, 0x11); PortWrite(SlavePort + 1, 1, 0x70); PortWrite(SlavePort + 1, 1, 0x02); PortWrite(SlavePort + 1, 1, 0x01);
        PortWrite(MasterPort + 1, 1, 0xFB);
        PortWrite(SlavePort + 1, 1, 0xFF);
    }

    /// <summary>Drives ISA IRQ line <paramref name="irq"/> (0-15).</summary>
    public void SetIrq(int irq, bool level)
    {
        if ((uint)irq > 15) throw new ArgumentOutOfRangeException(nameof(irq));
        bool raised;
        lock (_sync)
        {
            if (irq < 8) Master.SetInput(irq, level); else Slave.SetInput(irq - 8, level);
            raised = UpdateLocked();
        }
        if (raised) InterruptRaised?.Invoke();
    }

    // The slave's INTR is the master's IR2 (a level: the master latches it on the edge, as the board wires it).
    bool UpdateLocked()
    {
        Master.SetInput(Cascade, Slave.Output);
        bool was = _output;
        _output = Master.Output;
        return _output && !was;
    }

    public bool InterruptPending
    {
        get { lock (_sync) return Master.Output; }
    }

    public int Acknowledge()
    {
        bool raised;
        int vector;
        lock (_sync)
        {
            int irq = Master.Acknowledge(out bool spurious);
            if (irq == Cascade && !spurious)
            {
                int s = Slave.Acknowledge(out _);
                vector = Slave.VectorBase + s;
            }
            else vector = Master.VectorBase + irq;
            raised = UpdateLocked();
        }
        if (raised) InterruptRaised?.Invoke();
        return vector;
    }

    public uint PortRead(ushort port, int size)
    {
        lock (_sync)
        {
            switch (port)
            {
                case MasterPort: { byte v = Master.ReadCommand(); UpdateLocked(); return v; }
                case MasterPort + 1: return Master.ReadData();
                case SlavePort: { byte v = Slave.ReadCommand(); UpdateLocked(); return v; }
                case SlavePort + 1: return Slave.ReadData();
                case ElcrPort: return Master.Elcr;
                case ElcrPort + 1: return Slave.Elcr;
            }
            return 0xFF;
        }
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        bool raised;
        lock (_sync)
        {
            switch (port)
            {
                case MasterPort: Master.WriteCommand(v); break;
                case MasterPort + 1: Master.WriteData(v); break;
                case SlavePort: Slave.WriteCommand(v); break;
                case SlavePort + 1: Slave.WriteData(v); break;
                case ElcrPort: Master.Elcr = (byte)(v & Master.ElcrMask); break;
                case ElcrPort + 1: Slave.Elcr = (byte)(v & Slave.ElcrMask); break;
            }
            raised = UpdateLocked();
        }
        if (raised) InterruptRaised?.Invoke();
    }
}
