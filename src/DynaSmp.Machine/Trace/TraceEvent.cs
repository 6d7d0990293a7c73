namespace DynaSmp.Machine.Trace;

/// <summary>One timeline entry. A plain struct so rings are preallocated arrays and recording allocates nothing.</summary>
public struct TraceEvent
{
    /// <summary>VM clock ticks (<see cref="DynaSmp.Jit.Cpu.GuestClock"/>): host Stopwatch ticks, or virtual ns.</summary>
    public long Timestamp;
    public KvmPath Path;
    public MpState Before, After;
    public short Source, Target;
    public uint IcrLow, Destination;
    /// <summary>The vCPU whose ring holds it (the thread that did it).</summary>
    public short Recorder;
}
