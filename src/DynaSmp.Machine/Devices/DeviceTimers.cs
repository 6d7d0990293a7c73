namespace DynaSmp.Machine.Devices;

/// <summary>
/// One host thread per machine that makes timed devices fire while every vCPU is halted (QEMU's timer list, KVM's
/// hrtimers): it sleeps until the earliest <see cref="ITimedDevice.NextEventNs"/> and advances the devices. A device
/// that is reprogrammed calls <see cref="Reschedule"/> so the thread re-reads the deadlines.
/// </summary>
public sealed class DeviceTimers : IDisposable
{
    readonly IDeviceClock _clock;
    readonly List<ITimedDevice> _devices = new();
    readonly AutoResetEvent _changed = new(false);
    Thread? _thread;
    volatile bool _stop;

    public DeviceTimers(IDeviceClock clock) => _clock = clock;

    public void Add(ITimedDevice device)
    {
        if (_thread != null) throw new InvalidOperationException("devices are added before the timers start");
        _devices.Add(device);
    }

    /// <summary>A device's deadline changed. The thread starts on the first call, so machines whose guests never
    /// program a timer (the built-in guest, the workloads) cost no thread.</summary>
    public void Reschedule() => RescheduleBy(long.MinValue);

    /// <summary>A device's next event is now at <paramref name="dueNs"/>: the thread is woken only if that is earlier
    /// than the wake-up it already planned (at which it reads every deadline again anyway).</summary>
    /// <remarks>PERF: Linux reprograms each vCPU's LAPIC timer (one WRMSR of the TSC deadline) at every idle entry and
    /// tick; waking this thread each time was a futex call and, on 2 host cores busy with vCPUs, a context switch that
    /// left the writing vCPU off the CPU: 1,689 writes in a Debian boot kept vCPUs at that WRMSR for about 0.4 s.</remarks>
    public void RescheduleBy(long dueNs)
    {
        if (_stop) return;
        if (_thread == null) Start();
        Interlocked.MemoryBarrier(); // the caller's new deadline is visible before the plan is read (see Loop)
        if (dueNs >= Volatile.Read(ref _plannedWakeNs)) return;
        Interlocked.Increment(ref _wakes);
        _changed.Set();
    }

    // The earliest deadline the sleeping thread will wake for; long.MaxValue while it reads the deadlines, so that a
    // deadline changed during the read always wakes it.
    long _plannedWakeNs = long.MaxValue;
    long _wakes;
    long _plans;

    /// <summary>The deadline the thread sleeps for now (long.MaxValue while it reads the devices, or with none armed).</summary>
    public long PlannedWakeNs => Volatile.Read(ref _plannedWakeNs);

    /// <summary>Times the thread has read every deadline and planned its next wake-up (for tests: a plan made after a
    /// wake-up was requested shows that the request was consumed).</summary>
    public long Plans => Volatile.Read(ref _plans);

    /// <summary>Wake-ups requested (<see cref="Reschedule"/> always asks for one; for tests and profiles).</summary>
    public long RescheduleWakes => Volatile.Read(ref _wakes);

    readonly Lock _startLock = new();

    void Start()
    {
        lock (_startLock)
        {
            if (_thread != null || _stop) return;
            var t = new Thread(Loop, 256 * 1024) { IsBackground = true, Name = "DynaSmp device timers" };
            t.Start();
            _thread = t;
        }
    }

    void Loop()
    {
        while (!_stop)
        {
            Volatile.Write(ref _plannedWakeNs, long.MaxValue);
            Interlocked.MemoryBarrier();
            long now = _clock.NowNs, next = long.MaxValue;
            foreach (var d in _devices)
            {
                if (d.NextEventNs <= now) d.Advance(now);
                next = Math.Min(next, d.NextEventNs);
            }
            Volatile.Write(ref _plannedWakeNs, next);
            Volatile.Write(ref _plans, _plans + 1); // this thread is the only writer
            int waitMs = next == long.MaxValue ? Timeout.Infinite : (int)Math.Clamp((next - now + 999_999) / 1_000_000, 0, int.MaxValue);
            if (waitMs == 0) { Thread.Yield(); continue; }
            _changed.WaitOne(waitMs);
        }
    }

    public void Dispose()
    {
        lock (_startLock) _stop = true;
        _changed.Set();
        _thread?.Join();
        // The event is left to the finalizer: a device on some other thread may still be between its _stop
        // test and Set, and a disposed handle would throw there.
    }
}
