using System.Diagnostics;

namespace DynaSmp.Jit.Cpu;

/// <summary>
/// The time base of one VM: what RDTSC/RDTSCP, the TSC MSR, the LAPIC timer and the event trace count in.
/// A free-running VM reads host time (Stopwatch ticks). A deterministic VM reads virtual time: nanoseconds that only
/// its scheduler moves (by the instructions each turn retired, a fixed cost per turn, and a jump to the next timer
/// deadline when every vCPU waits), so the same seed gives the same readings on every run and every host.
/// </summary>
/// <remarks>Virtual time is single-threaded by construction: the deterministic scheduler is the only thread that
/// runs a deterministic VM's vCPUs and the only one that advances its clock.</remarks>
public sealed class GuestClock
{
    /// <summary>Host time, shared by every free-running VM (it has no state).</summary>
    public static readonly GuestClock Host = new(virtualTime: false);

    long _virtualTicks;

    public GuestClock(bool virtualTime)
    {
        IsVirtual = virtualTime;
        Frequency = virtualTime ? 1_000_000_000 : Stopwatch.Frequency;
    }

    public bool IsVirtual { get; }

    /// <summary>Ticks per second: the host's Stopwatch frequency, or 1 GHz for virtual time on every host.</summary>
    public long Frequency { get; }

    /// <summary>Host ticks, or the virtual time at the start of the current scheduler turn.</summary>
    public long Now => IsVirtual ? _virtualTicks : Stopwatch.GetTimestamp();

    /// <summary>Moves virtual time forward (the scheduler, after each turn).</summary>
    public void Advance(long ticks)
    {
        if (!IsVirtual) throw new InvalidOperationException("host time cannot be advanced");
        if (ticks > 0) _virtualTicks += ticks;
    }

    /// <summary>Moves virtual time forward to <paramref name="ticks"/> if it is later (idle: skip to the next timer).</summary>
    public void AdvanceTo(long ticks)
    {
        if (!IsVirtual) throw new InvalidOperationException("host time cannot be advanced");
        if (ticks > _virtualTicks) _virtualTicks = ticks;
    }
}
