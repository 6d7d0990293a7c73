using DynaSmp.Machine.Host;

namespace DynaSmp.Cli;

/// <summary>Refused up front because the host cannot hold the run: status 8 (<see cref="ExitStatus.HostResources"/>).</summary>
public sealed class HostResourcesException(string message) : Exception(message);

/// <summary>
/// Memory and thread admission before VMs are built: refuse, with what would fit, what the host cannot hold, instead
/// of growing until the kernel's OOM killer or pid exhaustion ends the process. Returns the resident-memory ceiling the
/// run is then held to (guest RAM is lazy, so a guest may still grow past the estimate by touching RAM).
/// </summary>
public static class Admission
{
    /// <summary>Test hook: pretend the host has this much memory available (a size as --mem takes), to exercise refusal.</summary>
    public const string AssumeMemoryVariable = "DYNASMP_ASSUME_AVAILABLE_MEMORY";

    /// <param name="runningVms">VMs whose vCPU threads exist at once (a fleet's window); all of them if null.</param>
    public static long Check(int vms, int vcpus, ulong guestRam, int traceCapacity, long loadedBytesPerVm, string vmsFlag, string vcpusFlag, int? runningVms = null)
    {
        var host = HostCapacity.Read();
        long available = host.AvailableMemory;
        string source = host.MemorySource;
        if (Environment.GetEnvironmentVariable(AssumeMemoryVariable) is { Length: > 0 } assumed)
        {
            available = CliOptions.TryParseSize(assumed, out ulong bytes) ? (long)bytes
                : throw new UsageException($"{AssumeMemoryVariable}: '{assumed}' is not a memory size (examples: 256, 256M, 1G)");
            source = AssumeMemoryVariable;
        }
        long totalVcpus = (long)Math.Min(vms, runningVms ?? vms) * vcpus;
        // Runtime threads (GC, tier-1 compiler, thread pool) and a margin for the rest of the host.
        long threadRoom = host.ThreadsAvailable == long.MaxValue ? long.MaxValue : host.ThreadsAvailable - 256;
        long mapRoom = host.MapsAvailable == long.MaxValue ? long.MaxValue : (host.MapsAvailable - 1024) / 2; // stack + guard per thread
        long fitsThreads = Math.Min(threadRoom, mapRoom);
        if (totalVcpus > fitsThreads)
            throw new HostResourcesException($"refused: {Describe(vms, vcpus)} need {totalVcpus:N0} vCPU threads; this host can start about {Math.Max(0, fitsThreads):N0} more " +
                $"(threads-max, pid_max, ulimit -u, vm.max_map_count). What would fit: {Suggest(vms, vcpus, Math.Max(0, fitsThreads), vmsFlag, vcpusFlag)}");

        long fixedBytes = Footprint.Fixed(vms, vcpus, guestRam, traceCapacity, loadedBytesPerVm);
        long usable = available == long.MaxValue ? long.MaxValue : available / 10 * 9;
        if (fixedBytes > usable)
        {
            long perVm = Footprint.PerVm + (long)(guestRam >> 12) + loadedBytesPerVm;
            long perVcpu = Footprint.PerVcpu + traceCapacity * Footprint.TraceEventBytes;
            long fitVcpus = Math.Max(0, (usable - Footprint.Process - vms * perVm) / perVcpu);
            throw new HostResourcesException($"refused: {Describe(vms, vcpus)} need about {Gib(fixedBytes)} of host memory before the guests touch their RAM " +
                $"({perVcpu >> 10} KiB per vCPU, {perVm >> 20} MiB per VM); the host has {Gib(available)} available ({source}). " +
                $"What would fit: {Suggest(vms, vcpus, Math.Min(fitVcpus, fitsThreads), vmsFlag, vcpusFlag)}");
        }
        if (available != long.MaxValue && (long)guestRam * vms + fixedBytes > usable)
            Console.Error.WriteLine($"dynasmp: note: {Gib((long)guestRam * vms)} of guest RAM is more than the {Gib(available)} the host has available ({source}); " +
                "RAM is allocated only where the guest touches it, and the run stops with status 8 if it outgrows the host");
        long rss = HostCapacity.ResidentBytes();
        return available == long.MaxValue ? long.MaxValue : rss + usable;
    }

    static string Describe(int vms, int vcpus) => vms == 1 ? $"{vcpus:N0} vCPU{(vcpus == 1 ? "" : "s")}" : $"{vms:N0} VMs x {vcpus:N0} vCPUs";

    static string Suggest(int vms, int vcpus, long fitVcpus, string vmsFlag, string vcpusFlag)
    {
        if (fitVcpus < 1) return "nothing: the host has no room left";
        long byVms = fitVcpus / vcpus, byCpus = fitVcpus / vms;
        var options = new List<string>();
        if (vmsFlag.Length > 0 && byVms >= 1) options.Add($"{vmsFlag} {byVms} {vcpusFlag} {vcpus}");
        if (byCpus >= 1) options.Add(vmsFlag.Length > 0 ? $"{vmsFlag} {vms} {vcpusFlag} {byCpus}" : $"{vcpusFlag} {byCpus}");
        return options.Count > 0 ? string.Join(", or ", options) + $" (about {fitVcpus:N0} vCPUs in all)" : $"about {fitVcpus:N0} vCPUs in all";
    }

    public static string Gib(long bytes) => bytes == long.MaxValue ? "unlimited" : bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : $"{bytes >> 20} MiB";
}
