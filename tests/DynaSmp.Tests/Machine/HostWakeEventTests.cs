using DynaSmp.Machine.Host;

namespace DynaSmp.Tests.Machine;

/// <summary>The event vCPU threads sleep on (a futex word on Linux x86-64): set wakes a sleeper, a set made before the
/// wait is not lost, reset clears it, and a timed wait comes back unset.</summary>
public class HostWakeEventTests
{
    [Fact]
    public void Set_before_wait_is_seen_and_reset_clears_it()
    {
        using var e = new HostWakeEvent();
        e.Set();
        Assert.True(e.Wait(0));
        Assert.True(e.Wait(Timeout.Infinite)); // still set: manual reset
        e.Reset();
        Assert.False(e.Wait(1));
    }

    [Fact]
    public void Set_from_another_thread_wakes_every_sleep_of_a_thousand()
    {
        using var e = new HostWakeEvent();
        using var sleeping = new SemaphoreSlim(0);
        int woken = 0;
        var sleeper = new Thread(() =>
        {
            for (int k = 0; k < 1000; k++)
            {
                sleeping.Release();
                while (!e.Wait(Timeout.Infinite)) { } // an early return (signal) waits again, as the vCPU loop does
                e.Reset();
                Interlocked.Increment(ref woken);
            }
        }) { IsBackground = true };
        sleeper.Start();
        for (int k = 0; k < 1000; k++)
        {
            Assert.True(sleeping.Wait(TimeSpan.FromSeconds(10)), $"sleeper never got to sleep {k}");
            // Let it reach the futex wait half the time; the other half the set races the wait.
            if ((k & 1) == 0) Thread.Sleep(0);
            e.Set();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (Volatile.Read(ref woken) <= k) Assert.True(DateTime.UtcNow < deadline, $"wake-up {k} was lost");
        }
        Assert.True(sleeper.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(1000, woken);
    }
}
