using System.Diagnostics;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// The one time source every platform device reads (PIT counters, RTC, PM timer, device timer deadlines), in
/// nanoseconds. A seam: the host clock today; a VM clock with virtual time (deterministic mode) can replace it
/// without touching the devices.
/// </summary>
public interface IDeviceClock
{
    long NowNs { get; }
}

/// <summary>Host monotonic time (Stopwatch), as the LAPIC timer and the TSC see it.</summary>
public sealed class HostDeviceClock : IDeviceClock
{
    public static readonly HostDeviceClock Instance = new();
    static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;
    public long NowNs => (long)(Stopwatch.GetTimestamp() * NsPerTick);
}

/// <summary>A clock tests move by hand.</summary>
public sealed class ManualDeviceClock : IDeviceClock
{
    long _now;
    public long NowNs => Volatile.Read(ref _now);
    public void Advance(long ns) => Interlocked.Add(ref _now, ns);
    public void Set(long ns) => Volatile.Write(ref _now, ns);
}

/// <summary>A device whose state changes with time (a counter reaching zero, a periodic flag). <see cref="DeviceTimers"/>
/// calls <see cref="Advance"/> at or after <see cref="NextEventNs"/>; reads of the device advance it too.</summary>
public interface ITimedDevice
{
    /// <summary>When the device next raises something on its own, or long.MaxValue.</summary>
    long NextEventNs { get; }

    /// <summary>Brings the device up to <paramref name="nowNs"/> (raising what fell due).</summary>
    void Advance(long nowNs);
}
