using System.Globalization;
using System.Runtime.InteropServices;

namespace DynaSmp.Machine.Host;

/// <summary>
/// What the host can still give this process, read from Linux before a run: memory (the smaller of
/// /proc/meminfo MemAvailable and the cgroup limit minus usage, v2 or v1) and threads (threads-max, pid_max,
/// RLIMIT_NPROC, minus the threads that exist). Values the host does not expose are treated as unlimited.
/// </summary>
public sealed record HostCapacity(long AvailableMemory, long ThreadsAvailable, long MapsAvailable, string MemorySource)
{
    public static HostCapacity Read()
    {
        long meminfo = MemInfoAvailable();
        long avail = meminfo;
        string source = "MemAvailable";
        long cg = CgroupRemaining();
        if (cg < avail) { avail = cg; source = "cgroup memory limit"; }

        long threadLimit = Math.Min(ReadLong("/proc/sys/kernel/threads-max"), ReadLong("/proc/sys/kernel/pid_max"));
        threadLimit = Math.Min(threadLimit, ThreadRlimit());
        long existing = ThreadsOnHost();
        long threads = threadLimit == long.MaxValue ? long.MaxValue : Math.Max(0, threadLimit - existing);

        long maxMaps = ReadLong("/proc/sys/vm/max_map_count");
        long maps = maxMaps == long.MaxValue ? long.MaxValue : Math.Max(0, maxMaps - CountLines("/proc/self/maps"));
        return new HostCapacity(avail, threads, maps, source);
    }

    /// <summary>Peak resident memory of this process (VmHWM), in bytes; 0 if unknown.</summary>
    public static long PeakResidentBytes() => StatusField("VmHWM:");

    /// <summary>Current resident memory of this process, in bytes; 0 if unknown. Polled by supervisors during a run,
    /// so it allocates nothing: one pread of /proc/self/statm (its second field, in pages) through a handle kept open.</summary>
    public static long ResidentBytes()
    {
        var handle = Statm.Value;
        if (handle == null) return 0;
        Span<byte> buf = stackalloc byte[128];
        int n;
        try { n = RandomAccess.Read(handle, buf, 0); }
        catch (IOException) { return 0; }
        int k = 0;
        while (k < n && buf[k] != ' ') k++; // skip the size field
        k++;
        long pages = 0;
        for (; k < n && buf[k] >= '0' && buf[k] <= '9'; k++) pages = pages * 10 + (buf[k] - '0');
        return pages * Environment.SystemPageSize;
    }

    static readonly Lazy<Microsoft.Win32.SafeHandles.SafeFileHandle?> Statm = new(() =>
    {
        try { return File.OpenHandle("/proc/self/statm"); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    });

    static long StatusField(string name)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(name, StringComparison.Ordinal)) return ParseKb(line[name.Length..]);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }

    static long MemInfoAvailable()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)) return ParseKb(line["MemAvailable:".Length..]);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return long.MaxValue;
    }

    static long ParseKb(string rest)
    {
        var t = rest.Trim();
        if (t.EndsWith("kB", StringComparison.Ordinal)) t = t[..^2].Trim();
        return long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long kb) ? kb * 1024 : 0;
    }

    /// <summary>The cgroup's limit minus its usage (v2 memory.max / memory.current, else v1).</summary>
    static long CgroupRemaining()
    {
        long limit = ReadLong("/sys/fs/cgroup/memory.max"), usage = ReadLong("/sys/fs/cgroup/memory.current");
        if (limit == long.MaxValue)
        {
            limit = ReadLong("/sys/fs/cgroup/memory/memory.limit_in_bytes");
            usage = ReadLong("/sys/fs/cgroup/memory/memory.usage_in_bytes");
        }
        if (limit == long.MaxValue || limit >= 1L << 60) return long.MaxValue;
        return Math.Max(0, limit - (usage == long.MaxValue ? 0 : usage));
    }

    /// <summary>A number in a file; long.MaxValue when missing, unreadable or "max".</summary>
    static long ReadLong(string path)
    {
        try
        {
            var t = File.ReadAllText(path).Trim();
            return long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : long.MaxValue;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return long.MaxValue; }
    }

    static long CountLines(string path)
    {
        try { return File.ReadLines(path).LongCount(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }

    /// <summary>Threads that exist on the host (the 4th field of /proc/loadavg: running/total).</summary>
    static long ThreadsOnHost()
    {
        try
        {
            var f = File.ReadAllText("/proc/loadavg").Split(' ');
            var slash = f[3].Split('/');
            return long.Parse(slash[1], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { return 0; }
    }

    static unsafe long ThreadRlimit()
    {
        if (!OperatingSystem.IsLinux()) return long.MaxValue;
        try
        {
            ulong* lim = stackalloc ulong[2];
            const int RlimitNproc = 6;
            if (GetRlimit(RlimitNproc, lim) != 0 || lim[0] >= long.MaxValue) return long.MaxValue;
            return (long)lim[0];
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return long.MaxValue; }
    }

    [DllImport("libc", EntryPoint = "getrlimit")]
    static extern unsafe int GetRlimit(int resource, ulong* rlim);
}

/// <summary>
/// What VMs cost the host, estimated before they are built. Guest RAM is reserved with MAP_NORESERVE and costs
/// memory only where the guest touches it, so it is reported apart from the fixed cost (paid at once).
/// </summary>
/// <remarks>Per-vCPU cost: CpuState with its software TLB (9 KiB), the jump cache (32 KiB), decoder and LAPIC state,
/// the touched part of a 256 KiB thread stack, runtime thread bookkeeping; measured at about 120 KiB resident per
/// spinning vCPU with 1,024 vCPUs, rounded up to 160 KiB. Per VM: devices, block cache and the code-page map.</remarks>
public static class Footprint
{
    public const long PerVcpu = 160 << 10;
    public const long PerVm = 2 << 20;
    public const long Process = 64 << 20;
    /// <summary>Bytes of one trace event in a vCPU's ring.</summary>
    public const long TraceEventBytes = 32;

    /// <summary>Memory committed up front for <paramref name="vms"/> VMs of <paramref name="vcpus"/> vCPUs.</summary>
    public static long Fixed(int vms, int vcpus, ulong guestRam, int traceCapacity, long loadedBytesPerVm)
    {
        long perVm = PerVm + (long)(guestRam >> 12) + loadedBytesPerVm + (long)vcpus * (PerVcpu + traceCapacity * TraceEventBytes);
        return Process + vms * perVm;
    }
}
