using DynaSmp.Machine.Devices;

namespace DynaSmp.Tests.Devices;

/// <summary>The machine's timer thread: it sleeps until the earliest device deadline, and a reprogrammed device wakes it
/// only when its new deadline comes before the one the thread already sleeps for.</summary>
public sealed class DeviceTimersTests
{
    sealed class Device(ManualDeviceClock clock) : ITimedDevice
    {
        long _due = long.MaxValue;
        public int Advanced;
        public long Due { get => Volatile.Read(ref _due); set => Volatile.Write(ref _due, value); }
        public long NextEventNs => Due;
        public void Advance(long nowNs)
        {
            if (nowNs < Due) return;
            Due = long.MaxValue;
            Interlocked.Increment(ref Advanced);
        }
        public ManualDeviceClock Clock => clock;
    }

    static bool WaitFor(Func<bool> condition)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (!condition()) { if (DateTime.UtcNow > until) return false; Thread.Sleep(2); }
        return true;
    }

    [Fact]
    public void A_later_deadline_does_not_wake_the_thread_and_an_earlier_one_does()
    {
        var clock = new ManualDeviceClock();
        using var timers = new DeviceTimers(clock);
        var a = new Device(clock);
        var b = new Device(clock);
        timers.Add(a); timers.Add(b);
        // 1,000 s of manual time away: the thread plans to sleep until then, and no host-time timeout of that plan
        // can end the sleep while the test runs.
        a.Due = 1_000_000_000_000;
        timers.RescheduleBy(a.Due); // starts the thread
        // That call requested a wake-up unless the new thread had already planned for a.Due. A requested wake-up ends
        // the thread's first plan at once, and only the plan after it is the real sleep: before that, a reschedule
        // may find the thread between plans, and any deadline wakes it then.
        long wakes = timers.RescheduleWakes;
        Assert.True(WaitFor(() => timers.Plans >= 1 + wakes && timers.PlannedWakeNs == a.Due));

        b.Due = 2_000_000_000_000; // later than the plan: the thread reads it when it wakes anyway
        timers.RescheduleBy(b.Due);
        Assert.Equal(wakes, timers.RescheduleWakes);

        b.Due = 0; // due now: earlier than the plan, so the thread is woken and advances it
        timers.RescheduleBy(b.Due);
        Assert.Equal(wakes + 1, timers.RescheduleWakes);
        Assert.True(WaitFor(() => Volatile.Read(ref b.Advanced) == 1));
        Assert.Equal(0, Volatile.Read(ref a.Advanced));
    }
}
