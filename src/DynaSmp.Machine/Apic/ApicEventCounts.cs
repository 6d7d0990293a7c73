namespace DynaSmp.Machine.Apic;

/// <summary>
/// What happened to every INIT, SIPI, NMI and fixed interrupt that reached one LAPIC, by the rule that disposed of it.
/// The storm checker balances them (posted = coalesced + accepted/delivered + cancelled/cleared + still pending), so a
/// lost event shows up as a hole. Sender-side fields are bumped with Interlocked, owner-side ones plainly.
/// </summary>
public sealed class ApicEventCounts
{
    // Sender side (any thread).
    public long InitPosted, InitCoalesced, SipiPosted, SipiCoalesced, SipiCancelledByInit;
    public long NmiQueued, NmiCoalesced, FixedLatched, FixedCoalesced;
    // Owner side (the vCPU's thread).
    public long InitAccepted, SipiAccepted, SipiDropped, NmiClearedByReset, FixedAcknowledged, FixedClearedByReset;

    /// <summary>VM clock time of the latch each pending INIT / SIPI / vector is waiting from (send-to-accept latency).</summary>
    public long InitLatchedAt, SipiLatchedAt;
    public readonly long[] FixedLatchedAt = new long[256];
}
