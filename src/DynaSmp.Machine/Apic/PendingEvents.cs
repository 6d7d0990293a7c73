namespace DynaSmp.Machine.Apic;

/// <summary>
/// The INIT/SIPI pending word of one LAPIC (KVM's apic->pending_events and sipi_vector). Written by any
/// sender, consumed only by the owning vCPU thread in <see cref="Lapic.AcceptEvents"/>.
/// </summary>
public struct PendingEvents
{
    public const int Init = 1, Sipi = 2;
    int _bits;
    int _sipiVector;

    public readonly int Bits => Volatile.Read(in _bits);

    // __apic_accept_irq(INIT): the word becomes {INIT}, discarding a SIPI still pending. An atomic exchange:
    // a SIPI racing in from another sender either lands after it (survives) or before it (lost); both legal.
    // Returns the word as it was (the INIT coalesced when it held INIT; a SIPI it held is cancelled).
    public int PostInit() => Interlocked.Exchange(ref _bits, Init);

    // The vector must be visible before the bit: the receiver takes the bit, then reads the vector, so it
    // can only see the vector of the SIPI that set the bit or of a later one (kvm-semantics.md §3).
    // Returns the word as it was (the SIPI coalesced when it held SIPI).
    public int PostSipi(byte vector)
    {
        Volatile.Write(ref _sipiVector, vector);
        return Interlocked.Or(ref _bits, Sipi);
    }

    /// <summary>Atomically clears INIT and reports whether it was set.</summary>
    public bool TakeInit() => (Interlocked.And(ref _bits, ~Init) & Init) != 0;

    /// <summary>Atomically clears SIPI; when it was set, returns true with the vector (read after the bit).</summary>
    public bool TakeSipi(out byte vector)
    {
        bool had = (Interlocked.And(ref _bits, ~Sipi) & Sipi) != 0;
        vector = had ? (byte)Volatile.Read(ref _sipiVector) : (byte)0;
        return had;
    }

    /// <summary>Host-side state setting (SetMpState(SipiReceived)): the stored vector stays as it is.</summary>
    public int SetSipiBit() => Interlocked.Or(ref _bits, Sipi);

    public readonly byte StoredVector => (byte)Volatile.Read(in _sipiVector);

    public void Clear() => Volatile.Write(ref _bits, 0);
}
