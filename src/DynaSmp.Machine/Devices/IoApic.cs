using DynaSmp.Machine.Apic;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// The I/O APIC at 0xFEC00000 as QEMU's (82093AA register interface, version 0x20 with the EOI register, 24 pins):
/// IOREGSEL/IOWIN, ID, version, and one redirection entry per pin. Edge pins deliver on a rising edge (an edge that
/// arrives while masked stays pending until unmasked, as QEMU keeps it); level pins deliver while asserted and set
/// remote IRR until the LAPIC's EOI for that vector comes back (<see cref="Eoi"/>). Delivery is an
/// <see cref="ApicMessage"/> to the machine's interrupt entry point.
/// </summary>
public sealed class IoApic : IMmioDevice
{
    public const int Pins = 24;
    public const ulong Size = 0x1000;
    const ulong Masked = 1UL << 16, RemoteIrr = 1UL << 14, LevelTrigger = 1UL << 15, ActiveLow = 1UL << 13, DeliveryStatus = 1UL << 12;
    const ulong WritableBits = 0xFF00_0000_0001_AFFFUL; // dest, mask, trigger, polarity, dest mode, delivery mode, vector

    readonly Lock _sync = new();
    readonly Action<ApicMessage> _deliver;
    readonly ulong[] _redirection = new ulong[Pins];
    uint _lines;   // input levels as driven (before polarity)
    uint _pending; // edge pins with an undelivered edge (QEMU's irr)
    uint _select, _id;

    public IoApic(Action<ApicMessage> deliver)
    {
        _deliver = deliver;
        Reset();
    }

    public void Reset()
    {
        lock (_sync)
        {
            for (int k = 0; k < Pins; k++) _redirection[k] = Masked;
            _lines = _pending = 0; _select = 0; _id = 0;
        }
    }

    public ulong RedirectionEntry(int pin) { lock (_sync) return _redirection[pin]; }

    /// <summary>Drives pin <paramref name="pin"/> (a GSI). Levels are as wired: an active-low pin asserts at 0.</summary>
    public void SetPin(int pin, bool level)
    {
        if ((uint)pin >= Pins) throw new ArgumentOutOfRangeException(nameof(pin));
        lock (_sync)
        {
            uint bit = 1u << pin;
            bool was = (_lines & bit) != 0;
            if (level) _lines |= bit; else _lines &= ~bit;
            ulong e = _redirection[pin];
            bool asserted = Asserted(pin);
            if ((e & LevelTrigger) != 0) { if (asserted) Service(pin); }
            else if (asserted && (level != was)) { _pending |= bit; Service(pin); }
        }
    }

    bool Asserted(int pin) => ((_lines >> pin) & 1) != 0 ^ (_redirection[pin] & ActiveLow) != 0;

    // ioapic_service: deliver what this pin has to deliver now.
    void Service(int pin)
    {
        ulong e = _redirection[pin];
        if ((e & Masked) != 0) return;
        uint bit = 1u << pin;
        if ((e & LevelTrigger) != 0)
        {
            if ((e & RemoteIrr) != 0 || !Asserted(pin)) return;
            _redirection[pin] = e | RemoteIrr;
        }
        else
        {
            if ((_pending & bit) == 0) return;
            _pending &= ~bit;
        }
        _deliver(new ApicMessage((uint)(e >> 56), (e & (1UL << 11)) != 0, (DeliveryMode)((e >> 8) & 7), (byte)e, (e & LevelTrigger) != 0));
    }

    /// <summary>The EOI broadcast for <paramref name="vector"/> (from a LAPIC, or the version-0x20 EOI register):
    /// clears remote IRR of level pins with that vector and re-delivers those still asserted.</summary>
    public void Eoi(int vector)
    {
        lock (_sync)
        {
            for (int pin = 0; pin < Pins; pin++)
            {
                ulong e = _redirection[pin];
                if ((e & LevelTrigger) == 0 || (e & RemoteIrr) == 0 || (byte)e != vector) continue;
                _redirection[pin] = e & ~RemoteIrr;
                Service(pin);
            }
        }
    }

    public ulong MmioRead(ulong offset, int size)
    {
        lock (_sync)
        {
            uint v = (offset & ~3UL) switch
            {
                0x00 => _select,
                0x10 => ReadRegister(),
                _ => 0,
            };
            return (v >> (int)((offset & 3) * 8)) & (uint)MmioMap.Floating(Math.Min(size, 4));
        }
    }

    uint ReadRegister()
    {
        switch (_select)
        {
            case 0: return _id << 24;
            case 1: return (Pins - 1) << 16 | 0x20;
            case 2: return _id << 24; // arbitration ID
        }
        int index = (int)(_select - 0x10);
        if (index < 0 || index >= 2 * Pins) return 0xFFFF_FFFF;
        ulong e = _redirection[index >> 1];
        return (index & 1) == 0 ? (uint)e : (uint)(e >> 32);
    }

    public void MmioWrite(ulong offset, int size, ulong value)
    {
        if (size != 4 && offset != 0) return; // IOWIN and EOI take 32-bit writes only
        lock (_sync)
        {
            switch (offset)
            {
                case 0x00: _select = (uint)value & 0xFF; return;
                case 0x40: Eoi((int)(value & 0xFF)); return;
                case 0x10: WriteRegister((uint)value); return;
            }
        }
    }

    void WriteRegister(uint v)
    {
        if (_select == 0) { _id = (v >> 24) & 0xF; return; }
        int index = (int)(_select - 0x10);
        if (index < 0 || index >= 2 * Pins) return;
        int pin = index >> 1;
        ulong e = _redirection[pin];
        ulong written = (index & 1) == 0 ? (e & 0xFFFF_FFFF_0000_0000UL) | v : (e & 0xFFFF_FFFFUL) | (ulong)v << 32;
        // Remote IRR and delivery status are read-only; switching a pin to edge clears remote IRR (QEMU).
        e = (written & WritableBits) | (e & RemoteIrr);
        if ((e & LevelTrigger) == 0) e &= ~RemoteIrr;
        _redirection[pin] = e & ~DeliveryStatus;
        Service(pin);
    }
}
