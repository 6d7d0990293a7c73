using System.Diagnostics;

namespace DynaSmp.Perf.Machine;

/// <summary>`quick-machine`: the IPI and run-loop figures from Stopwatch histograms of single sends, in a few
/// seconds. Allocation figures are whole-process (GC.GetTotalAllocatedBytes, precise) over the measured window.</summary>
public static class MachineQuick
{
    public static void Run()
    {
        Console.WriteLine($"host baseline, thread-to-thread flag round trip: median {HostPingPong():F2} us (the floor for any cross-thread IPI)");
        using (var g = new IpiGuest(2, IpiGuest.Body.Spin))
        {
            for (int k = 0; k < 20_000; k++) g.SendAndWait(1);
            var ticks = new long[50_000];
            long bytes = GC.GetTotalAllocatedBytes(true);
            for (int k = 0; k < ticks.Length; k++) ticks[k] = g.SendAndWait(1);
            bytes = GC.GetTotalAllocatedBytes(true) - bytes;
            Print("IPI to a running vCPU, send -> handler", ticks, bytes);
            for (int k = 0; k < ticks.Length; k++)
            {
                ulong before = g.Count(1);
                long t0 = Stopwatch.GetTimestamp();
                g.Send(1);
                ticks[k] = Stopwatch.GetTimestamp() - t0;
                while (g.Count(1) == before) { }
            }
            Array.Sort(ticks);
            Console.WriteLine($"    of which the sender's SendIpi call (route, latch, trace, kick): median {ticks[ticks.Length / 2] * 1e6 / Stopwatch.Frequency:F3} us");
        }
        using (var g = new IpiGuest(2, IpiGuest.Body.Halt))
        {
            var ticks = new long[5_000];
            for (int k = 0; k < 1_000; k++) { g.WaitAsleep(1); g.SendAndWait(1); }
            long bytes = GC.GetTotalAllocatedBytes(true);
            for (int k = 0; k < ticks.Length; k++)
            {
                g.WaitAsleep(1);
                Pause(50); // let the target's thread get all the way into the kernel wait
                ticks[k] = g.SendAndWait(1);
            }
            bytes = GC.GetTotalAllocatedBytes(true) - bytes;
            Print("IPI to a halted (blocked) vCPU, kick -> handler", ticks, bytes);
            var v = g.Vm.Vcpus[1];
            Console.WriteLine($"    vCPU 1: halts {v.Halts:N0}, wake-ups {v.Wakeups:N0}, blocked waits {v.BlockedWaits:N0}, halt no-ops {v.HaltNoops:N0}");
        }
        using (var g = new IpiGuest(2, IpiGuest.Body.SelfIpiHalt))
        {
            Thread.Sleep(300); // warm-up: tier-up of the loop and the handler
            var sw = Stopwatch.StartNew();
            ulong c0 = g.Count(1);
            long bytes = GC.GetTotalAllocatedBytes(true);
            Thread.Sleep(1000);
            ulong n = g.Count(1) - c0;
            bytes = GC.GetTotalAllocatedBytes(true) - bytes;
            double s = sw.Elapsed.TotalSeconds;
            var v = g.Vm.Vcpus[1];
            Console.WriteLine($"run loop, self-IPI + HLT on one vCPU: {n / s:N0} iterations/s ({s * 1e9 / n:F0} ns each), " +
                              $"{(double)bytes / n:F3} bytes/iteration ({bytes:N0} bytes in the window); halt no-ops {v.HaltNoops:N0}");
        }
    }

    /// <summary>Two host threads bounce a counter through one cache line: median microseconds per round trip.</summary>
    static double HostPingPong()
    {
        var cell = new long[16];
        bool stop = false;
        var echo = new Thread(() =>
        {
            long seen = 0;
            while (!Volatile.Read(ref stop))
            {
                long v = Volatile.Read(ref cell[0]);
                if (v != seen && (v & 1) == 1) { seen = v + 1; Volatile.Write(ref cell[0], seen); }
            }
        }) { IsBackground = true };
        echo.Start();
        var ticks = new long[50_000];
        long next = 1;
        for (int k = -10_000; k < ticks.Length; k++)
        {
            long t0 = Stopwatch.GetTimestamp();
            Volatile.Write(ref cell[0], next);
            while (Volatile.Read(ref cell[0]) != next + 1) { }
            next += 2;
            if (k >= 0) ticks[k] = Stopwatch.GetTimestamp() - t0;
        }
        Volatile.Write(ref stop, true);
        echo.Join();
        Array.Sort(ticks);
        return ticks[ticks.Length / 2] * 1e6 / Stopwatch.Frequency;
    }

    static void Pause(int microseconds)
    {
        long end = Stopwatch.GetTimestamp() + microseconds * Stopwatch.Frequency / 1_000_000;
        while (Stopwatch.GetTimestamp() < end) Thread.SpinWait(20);
    }

    static void Print(string title, long[] ticks, long bytes)
    {
        Array.Sort(ticks);
        double Us(double q) => ticks[Math.Min(ticks.Length - 1, (int)(q * ticks.Length))] * 1e6 / Stopwatch.Frequency;
        Console.WriteLine($"{title} ({ticks.Length:N0} sends): min {Us(0):F2} us, median {Us(0.5):F2} us, p90 {Us(0.9):F2} us, " +
                          $"p99 {Us(0.99):F2} us, max {Us(1):F1} us; {(double)bytes / ticks.Length:F3} bytes/send");
    }
}
