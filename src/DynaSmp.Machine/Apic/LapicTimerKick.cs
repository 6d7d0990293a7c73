using System.Diagnostics;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Machine.Apic;

/// <summary>
/// Makes a vCPU's LAPIC timer fire while the vCPU is busy in guest code: the machine's <see cref="DeviceTimers"/>
/// thread kicks the vCPU at the deadline, and the run loop then polls the timer into the IRR. (A halted vCPU
/// already sleeps with the deadline as its timeout.) One kick per deadline.
/// </summary>
public sealed class LapicTimerKick(Vcpu vcpu) : ITimedDevice
{
    static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;
    long _kickedFor = long.MinValue;

    long Deadline => vcpu.Apic.NextTimerEvent(Stopwatch.GetTimestamp());

    public long NextEventNs
    {
        get
        {
            long d = Deadline;
            return d == long.MaxValue || d == Volatile.Read(ref _kickedFor) ? long.MaxValue : (long)(d * NsPerTick);
        }
    }

    public void Advance(long nowNs)
    {
        long d = Deadline;
        if (d == long.MaxValue || (long)(d * NsPerTick) > nowNs) return;
        Volatile.Write(ref _kickedFor, d);
        vcpu.RequestEvent();
    }
}
