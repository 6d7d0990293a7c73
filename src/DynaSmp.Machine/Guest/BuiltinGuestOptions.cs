namespace DynaSmp.Machine.Guests;

/// <summary>How long the BSP waits around the INIT/STARTUP IPIs it sends to each AP.</summary>
public enum IpiDelays
{
    /// <summary>No waiting: the IPIs go out back to back (only the ICR delivery-status spin separates them).</summary>
    None,

    /// <summary>
    /// What Linux 6.x <c>wakeup_secondary_cpu_via_init</c> does on a modern CPU (<c>init_udelay</c> = 0): nothing after
    /// INIT, then for each STARTUP 10 us before and 10 us after waiting for the ICR to go idle. Timed with RDTSC at the
    /// frequency described on <see cref="BuiltinGuest"/>.
    /// </summary>
    Linux,
}

/// <summary>Knobs of <see cref="BuiltinGuest.Build"/>. Equal options give byte-for-byte equal images.</summary>
public sealed record BuiltinGuestOptions
{
    public static readonly BuiltinGuestOptions Default = new();

    public IpiDelays IpiDelays { get; init; } = IpiDelays.None;

    /// <summary>
    /// How long the BSP waits for each AP to check in, in nominal milliseconds of the guest's TSC estimate (see
    /// <see cref="BuiltinGuest"/>): with the 1 GHz fallback on a faster TSC the real wait is shorter. A spin-count
    /// backstop (<see cref="GuestLayout.ApWaitSpinLimit"/> iterations) ends the wait even if the TSC never moves.
    /// </summary>
    public int ApTimeoutMs { get; init; } = 2000;

    /// <summary>
    /// Set multiboot flag bit 16 (the load-address fields are valid). The fields are always filled in and agree with
    /// the ELF program headers; with the bit set QEMU loads by the fields instead of parsing the ELF.
    /// </summary>
    public bool MultibootAddressFields { get; init; }

    /// <summary>
    /// Fault injection for testing the failure path: the BSP sends this APIC ID its INITs but no STARTUP, so it must
    /// report "AP n TIMEOUT" and exit with <see cref="GuestLayout.ExitSomeApMissing"/>. 0 (the default) skips no one.
    /// </summary>
    public int WithholdStartupFromApicId { get; init; }

    /// <summary>Test knob: NOPs the BSP runs once, right after its first phase mark. One NOP is the smallest change a
    /// guest can make; the tests use it to show that `--stats` and `dynasmp compare` see it. 0 in every real image.</summary>
    internal int ExtraBspNops { get; init; }
}
