using System.Diagnostics;
using System.Text.Json.Serialization;

namespace DynaSmp.Cli.Commands;

/// <summary>`boot --qemu`: the same fleet under QEMU TCG in the same run, one qemu-system-x86_64 process per VM and the
/// same number at once, so the ratio compares like with like on one host at one moment.</summary>
public sealed class QemuFleetSummary
{
    [JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    [JsonPropertyName("vms_booted")] public int VmsBooted { get; set; }
    [JsonPropertyName("failures")] public List<string> Failures { get; set; } = new();
    /// <summary>DynaSmp's set-up plus run, the span QEMU's processes cover (each builds its machine, then boots).</summary>
    [JsonPropertyName("dynasmp_s")] public double DynaSmpSeconds { get; set; }
    /// <summary>QEMU's wall time over DynaSmp's: above 1, DynaSmp was faster.</summary>
    [JsonPropertyName("speed")] public double Speed { get; set; }
}

static class QemuFleet
{
    /// <summary>Boots <paramref name="vms"/> VMs of <paramref name="cpus"/> vCPUs, <paramref name="parallel"/> at a time.
    /// A built-in guest VM has booted when it exits through isa-debug-exit with value 0 having printed "SMP: N of N CPUs
    /// online"; a Linux VM when it powers off having printed "smp: Brought up 1 node, N CPUs".</summary>
    public static QemuFleetSummary Run(string qemu, byte[] image, LinuxGuest? linux, int vms, int cpus, int parallel, ulong mem, Deadline deadline)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"dynasmp-qemu-fleet-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string kernel = Path.Combine(dir, linux == null ? "guest.elf" : "bzImage");
            File.WriteAllBytes(kernel, image);
            string? initrd = null;
            if (linux != null) File.WriteAllBytes(initrd = Path.Combine(dir, "initrd"), linux.Initrd);
            string expected = linux == null ? $"SMP: {cpus} of {cpus} CPUs online" : $"smp: Brought up 1 node, {cpus} CPU";
            int wantStatus = linux == null ? 1 : 0;
            var failures = new string?[vms];
            long start = Stopwatch.GetTimestamp();
            Parallel.For(0, vms, new ParallelOptions { MaxDegreeOfParallelism = parallel }, k =>
            {
                bool seen = false;
                var remaining = TimeSpan.FromSeconds(Math.Max(1, deadline.Remaining.TotalSeconds));
                var outcome = QemuReference.Run(qemu, kernel, cpus, linux?.CommandLine ?? "", remaining, line => seen |= line.Contains(expected, StringComparison.Ordinal),
                    initrd, (int)(mem >> 20));
                failures[k] = outcome.ExitCode == null ? $"vm {k}: no result before the timeout"
                    : outcome.ExitCode != wantStatus ? $"vm {k}: exit status {outcome.ExitCode} (expected {wantStatus}){Tail(outcome.Stderr)}"
                    : !seen ? $"vm {k}: the serial output lacks \"{expected}\""
                    : null;
            });
            var s = new QemuFleetSummary { WallSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds };
            foreach (var f in failures)
                if (f == null) s.VmsBooted++;
                else s.Failures.Add(f);
            return s;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static string Tail(string stderr) => stderr.Trim() is { Length: > 0 } t ? $": {t.Split('\n')[^1]}" : "";
}
