using System.Diagnostics;
using DynaSmp.Jit;

namespace DynaSmp.Machine.Trace;

/// <summary>
/// A preallocated per-vCPU ring of <see cref="TraceEvent"/>s. Single writer (the vCPU's own thread records
/// what it sends and accepts), so recording is two plain stores and an index bump: no lock, no allocation.
/// Readers snapshot it after the VM stopped (or accept torn reads while it runs). Timestamps are the VM clock as
/// <paramref name="clock"/> sees it (virtual in deterministic mode, so traces replay byte for byte), else host ticks.
/// </summary>
public sealed class EventTrace(int owner, int capacity = 4096, CpuCore? clock = null)
{
    readonly TraceEvent[] _ring = new TraceEvent[capacity];
    long _next;

    public bool Enabled { get; set; } = true;
    /// <summary>Keep the first events instead of the last: a long run (a real kernel) still shows its start-up
    /// (Linux's INIT/SIPI sequence) after the ring would have wrapped.</summary>
    public bool KeepFirst { get; set; }
    public long Recorded => Volatile.Read(ref _next);

    public void Record(KvmPath path, int source, int target, uint icrLow, uint destination, MpState before, MpState after)
    {
        if (!Enabled || KeepFirst && _next >= _ring.Length) return;
        ref var e = ref _ring[(int)(_next % _ring.Length)];
        e.Timestamp = clock != null ? clock.ClockNow() : Stopwatch.GetTimestamp();
        e.Path = path;
        e.Source = (short)source;
        e.Target = (short)target;
        e.IcrLow = icrLow;
        e.Destination = destination;
        e.Before = before;
        e.After = after;
        e.Recorder = (short)owner;
        Volatile.Write(ref _next, _next + 1);
    }

    /// <summary>Copies the retained events, oldest first.</summary>
    public List<TraceEvent> Snapshot()
    {
        long n = Recorded;
        long start = Math.Max(0, n - _ring.Length);
        var list = new List<TraceEvent>((int)(n - start));
        for (long k = start; k < n; k++) list.Add(_ring[(int)(k % _ring.Length)]);
        return list;
    }

    public void Clear() => Volatile.Write(ref _next, 0);
}
