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
    public void Reschedule()
    {
        if (_stop) return;
        if (_thread == null) Start();
        _changed.Set();
    }

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
            long now = _clock.NowNs, next = long.MaxValue;
            foreach (var d in _devices)
            {
                if (d.NextEventNs <= now) d.Advance(now);
                next = Math.Min(next, d.NextEventNs);
            }
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
