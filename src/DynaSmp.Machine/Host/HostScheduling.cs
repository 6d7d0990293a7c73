using System.Runtime.InteropServices;

namespace DynaSmp.Machine.Host;

/// <summary>Host scheduling for vCPU threads. .NET's Thread.Priority does nothing for SCHED_OTHER threads on
/// Linux, so a thousand spinning vCPUs on two cores would leave the thread that enforces --timeout waiting its turn
/// behind all of them (Linux's fair scheduler gives every runnable thread an equal share). vCPU threads therefore
/// lower their own nice value: the controlling threads, at nice 0, then run as soon as they wake.</summary>
public static class HostScheduling
{
    /// <summary>The nice value vCPU threads run at (Linux). Raising nice needs no privilege.</summary>
    public const int VcpuNice = 5;

    /// <summary>Lowers the calling thread's priority to <paramref name="nice"/> (never raises it). Best effort.</summary>
    public static void LowerCurrentThread(int nice)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            int tid = GetTid();
            // setpriority(PRIO_PROCESS, tid, ...) affects one thread on Linux.
            if (GetPriority(0, tid) < nice) SetPriority(0, tid, nice);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "gettid")]
    static extern int GetTid();

    [DllImport("libc", EntryPoint = "setpriority")]
    static extern int SetPriority(int which, int who, int prio);

    [DllImport("libc", EntryPoint = "getpriority")]
    static extern int GetPriority(int which, int who);
}
