namespace DynaSmp.Machine.Devices;

/// <summary>
/// One 8259A programmable interrupt controller (Intel 8259A data sheet): IRR/ISR/IMR, fully nested and rotating
/// priority, specific and non-specific EOI, automatic EOI, special mask mode, poll, and the edge/level choice of
/// the PIIX ELCR. Not thread-safe on its own: <see cref="Pic8259Pair"/> serialises every access.
/// </summary>
public sealed class Pic8259
{
    public byte Irr, Isr, Imr;
    /// <summary>Edge/level control (ELCR): a set bit makes that input level-sensitive.</summary>
    public byte Elcr;
    public byte ElcrMask;
    public byte VectorBase;
    /// <summary>The IR with the lowest priority (rotation); IR (this + 1) mod 8 has the highest.</summary>
    public int LowestPriority = 7;
    byte _lines; // current input levels
    bool _readIsr, _poll, _autoEoi, _rotateInAutoEoi, _specialMask, _singleMode, _needIcw4;
    int _initStep; // 0 = operational; 2, 3, 4 = the ICW the next data-port write is

    public Pic8259(byte elcrMask) => ElcrMask = elcrMask;

    public void Reset()
    {
        Irr = Isr = Imr = 0; _lines = 0; Elcr = 0;
        VectorBase = 0; LowestPriority = 7;
        _readIsr = _poll = _autoEoi = _rotateInAutoEoi = _specialMask = _singleMode = _needIcw4 = false;
        _initStep = 0;
    }

    /// <summary>Drives input <paramref name="irq"/>: a rising edge latches IRR in edge mode; in level mode IRR
    /// follows the line.</summary>
    public void SetInput(int irq, bool level)
    {
        byte bit = (byte)(1 << irq);
        if ((Elcr & bit) != 0)
        {
            if (level) Irr |= bit; else Irr &= (byte)~bit;
        }
        else if (level && (_lines & bit) == 0) Irr |= bit;
        if (level) _lines |= bit; else _lines &= (byte)~bit;
    }

    int Priority(int irq) => (irq - LowestPriority - 1) & 7; // 0 = highest

    // The highest-priority IR set in mask, or -1.
    int Highest(byte mask)
    {
        if (mask == 0) return -1;
        int best = -1;
        for (int k = 0; k < 8; k++)
            if ((mask & (1 << k)) != 0 && (best < 0 || Priority(k) < Priority(best))) best = k;
        return best;
    }

    /// <summary>The IR that would be acknowledged now, or -1: an unmasked request of higher priority than every
    /// in-service level (special mask mode: only in-service levels that are unmasked block).</summary>
    public int PendingIrq()
    {
        int irq = Highest((byte)(Irr & ~Imr));
        if (irq < 0) return -1;
        byte inService = _specialMask ? (byte)(Isr & ~Imr) : Isr;
        int cur = Highest(inService);
        // On the master, an in-service cascade input does not block the slave's higher-priority requests
        // (special fully nested mode is what PCs rely on); the pair handles that by asking the slave first.
        if (cur >= 0 && Priority(cur) <= Priority(irq)) return -1;
        return irq;
    }

    /// <summary>INTA: moves the pending request to in service and returns its IR (or 7: spurious, ISR untouched).</summary>
    public int Acknowledge(out bool spurious)
    {
        int irq = PendingIrq();
        spurious = irq < 0;
        if (spurious) return 7;
        byte bit = (byte)(1 << irq);
        // An edge request is consumed; a level request stays in IRR while the line is high.
        if ((Elcr & bit) == 0 || (_lines & bit) == 0) Irr &= (byte)~bit;
        if (_autoEoi) { if (_rotateInAutoEoi) LowestPriority = irq; }
        else Isr |= bit;
        return irq;
    }

    public void WriteCommand(byte v)
    {
        if ((v & 0x10) != 0)
        {
            // ICW1: edge-sense reset, IMR cleared, IR7 lowest, special mask off, read IRR; IC4 and SNGL noted.
            _needIcw4 = (v & 1) != 0;
            _singleMode = (v & 2) != 0;
            Imr = 0; Isr = 0; Irr = 0; _lines = 0;
            LowestPriority = 7; _specialMask = false; _readIsr = false; _poll = false; _autoEoi = false;
            _initStep = 2;
            return;
        }
        if ((v & 0x08) != 0)
        {
            // OCW3
            if ((v & 0x04) != 0) _poll = true;
            if ((v & 0x02) != 0) _readIsr = (v & 1) != 0;
            if ((v & 0x40) != 0) _specialMask = (v & 0x20) != 0;
            return;
        }
        // OCW2: R SL EOI
        int cmd = v >> 5, level = v & 7;
        switch (cmd)
        {
            case 0: _rotateInAutoEoi = false; break;
            case 4: _rotateInAutoEoi = true; break;
            case 1: case 5: // non-specific EOI (and rotate): the highest-priority in-service level
            {
                int irq = Highest(Isr);
                if (irq >= 0)
                {
                    Isr &= (byte)~(1 << irq);
                    if (cmd == 5) LowestPriority = irq;
                }
                break;
            }
            case 3: case 7: // specific EOI (and rotate)
                Isr &= (byte)~(1 << level);
                if (cmd == 7) LowestPriority = level;
                break;
            case 6: LowestPriority = level; break; // set priority
        }
    }

    public byte ReadCommand()
    {
        if (_poll)
        {
            // Poll mode: the read is the INTA: bit 7 = a request, bits 2:0 its level.
            _poll = false;
            int irq = PendingIrq();
            if (irq < 0) return 0;
            Acknowledge(out _);
            return (byte)(0x80 | irq);
        }
        return _readIsr ? Isr : Irr;
    }

    public void WriteData(byte v)
    {
        switch (_initStep)
        {
            case 2:
                VectorBase = (byte)(v & 0xF8);
                _initStep = _singleMode ? (_needIcw4 ? 4 : 0) : 3;
                return;
            case 3:
                _initStep = _needIcw4 ? 4 : 0; // ICW3: cascade wiring is fixed on a PC
                return;
            case 4:
                _autoEoi = (v & 2) != 0;
                _initStep = 0;
                return;
        }
        Imr = v; // OCW1
    }

    public byte ReadData() => Imr;

    /// <summary>INTR: some request would be acknowledged now.</summary>
    public bool Output => PendingIrq() >= 0;
}
