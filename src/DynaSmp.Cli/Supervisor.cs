using DynaSmp.Machine;
using DynaSmp.Machine.Host;

namespace DynaSmp.Cli;

/// <summary>
/// Watches running VMs for a command: until each stops by itself, the deadline passes (stopped as Timeout), or the
/// process outgrows its memory ceiling (stopped as HostResources); then stops the rest and joins them within a bounded
/// time. VMs whose threads do not leave in time are reported and never disposed (their threads still use them).
/// </summary>
public static class Supervisor
{
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(20);

    /// <summary>Returns true if every VM stopped by itself (no timeout, no memory stop). <paramref name="joined"/>:
    /// every vCPU thread has ended, so the VMs may be disposed.</summary>
    public static bool Watch(IReadOnlyList<Vm> vms, Deadline deadline, long rssCeiling, Action<int>? finished, out bool joined, TimeSpan? joinBudget = null, Action? poll = null)
    {
        var done = new bool[vms.Count];
        int left = vms.Count;
        bool clean = true;
        long nextRssCheck = 0;
        while (left > 0)
        {
            for (int k = 0; k < vms.Count; k++)
            {
                if (done[k] || !vms[k].StopRequested) continue;
                done[k] = true;
                left--;
                finished?.Invoke(k);
            }
            if (left == 0) break;
            poll?.Invoke();
            if (deadline.Expired)
            {
                if (Dbg) Console.Error.WriteLine($"[{deadline.Elapsed:F3}] deadline seen, gcs {GC.CollectionCount(0)} alloc {GC.GetTotalAllocatedBytes(true)}");
                foreach (var vm in vms) vm.Stop(VmExitKind.Timeout, $"timeout after {deadline.Seconds} s");
                clean = false;
                break;
            }
            if (rssCeiling != long.MaxValue && Environment.TickCount64 >= nextRssCheck)
            {
                nextRssCheck = Environment.TickCount64 + 100;
                long rss = HostCapacity.ResidentBytes();
                if (rss > rssCeiling)
                {
                    foreach (var vm in vms)
                        vm.Stop(VmExitKind.HostResources, $"host memory: the process reached {Admission.Gib(rss)} resident, over the {Admission.Gib(rssCeiling)} the host had available at the start (guests touching their RAM)");
                    clean = false;
                    break;
                }
            }
            // Waiting on the first unfinished VM keeps the reaction to its exit immediate; the others are polled.
            for (int k = 0; k < vms.Count; k++)
                if (!done[k]) { vms[k].WaitForExit(Min(Poll, deadline.Remaining)); break; }
        }
        if (Dbg) Console.Error.WriteLine($"[{deadline.Elapsed:F3}] stopped");
        joined = JoinAll(vms, deadline, joinBudget);
        if (Dbg) Console.Error.WriteLine($"[{deadline.Elapsed:F3}] joined {joined}, gcs {GC.CollectionCount(0)}");
        if (!clean) for (int k = 0; k < vms.Count; k++) if (!done[k]) finished?.Invoke(k);
        return clean;
    }

    /// <summary>Joins every VM's threads, waiting at most until the deadline plus <see cref="Deadline.JoinBudget"/>.</summary>
    public static bool JoinAll(IReadOnlyList<Vm> vms, Deadline deadline, TimeSpan? joinBudget = null)
    {
        foreach (var vm in vms) if (!vm.StopRequested) vm.Stop(VmExitKind.Stopped, "stopped by the host");
        var budget = deadline.Remaining + (joinBudget ?? Deadline.JoinBudget);
        var end = Environment.TickCount64 + (long)budget.TotalMilliseconds;
        foreach (var vm in vms)
            if (!vm.Join(TimeSpan.FromMilliseconds(Math.Max(0, end - Environment.TickCount64)))) return false;
        return true;
    }

    static readonly bool Dbg = Environment.GetEnvironmentVariable("DYNASMP_DEBUG_DEADLINE") == "1";

    static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
