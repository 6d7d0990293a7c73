using System.Text.Json.Serialization;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp boot --json` output; the field names are the contract CI tools read.</summary>
public sealed class BootSummary
{
    /// <summary>VMs this run booted (a shard's share of the fleet; merged: all).</summary>
    [JsonPropertyName("vms")] public int Vms { get; set; }
    [JsonPropertyName("shard")] public string Shard { get; set; } = "0/1";
    /// <summary>The fleet-wide numbers of the VMs booted, so shards can be merged and checked for overlap.</summary>
    [JsonPropertyName("vm_numbers")] public List<int> VmNumbers { get; set; } = new();
    [JsonPropertyName("deterministic_seed")] public int? DeterministicSeed { get; set; }
    /// <summary>VMs that ran at once (`--parallel`); merged: the sum, as shards run side by side.</summary>
    [JsonPropertyName("parallel")] public int Parallel { get; set; }
    [JsonPropertyName("vcpus_per_vm")] public int VcpusPerVm { get; set; }
    [JsonPropertyName("vcpus_online")] public int VcpusOnline { get; set; }
    [JsonPropertyName("failures")] public List<string> Failures { get; set; } = new();
    [JsonPropertyName("bringup_us")] public BringupStats BringupUs { get; set; } = new();
    /// <summary>Every AP's bring-up time, sorted: merged shard percentiles are recomputed from these, never averaged.</summary>
    [JsonPropertyName("bringup_samples_us")] public List<double> BringupSamplesUs { get; set; } = new();
    [JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    /// <summary>Building the VMs before the first vCPU starts (not in <see cref="WallSeconds"/>).</summary>
    [JsonPropertyName("setup_s")] public double SetupSeconds { get; set; }
    [JsonPropertyName("guest_instructions")] public ulong GuestInstructions { get; set; }
    [JsonPropertyName("mips")] public double Mips { get; set; }
    [JsonPropertyName("peak_resident_bytes")] public long PeakResidentBytes { get; set; }
    [JsonPropertyName("status")] public int Status { get; set; }
    [JsonPropertyName("status_name")] public string StatusName { get; set; } = "";
    [JsonPropertyName("ipi_delays")] public string IpiDelays { get; set; } = "none";
    /// <summary>`--qemu`: the same fleet under QEMU TCG in the same run.</summary>
    [JsonPropertyName("qemu")] public QemuFleetSummary? Qemu { get; set; }
}

/// <summary>`dynasmp merge` of `boot --shard` summaries: counts add, percentiles come from the merged samples, failures
/// keep their VM number and seed, and the wall time is the longest shard's (shards run side by side).</summary>
public static class BootMerge
{
    public static BootSummary Merge(IReadOnlyList<BootSummary> shards)
    {
        if (shards.Count == 0) throw new ArgumentException("nothing to merge");
        var first = shards[0];
        var m = new BootSummary
        {
            Shard = $"merged {shards.Count}", VcpusPerVm = first.VcpusPerVm, IpiDelays = first.IpiDelays, DeterministicSeed = first.DeterministicSeed,
        };
        var seen = new HashSet<int>();
        var samples = new List<double>();
        foreach (var s in shards)
        {
            if (s.VcpusPerVm != first.VcpusPerVm || s.DeterministicSeed != first.DeterministicSeed || s.IpiDelays != first.IpiDelays)
                throw new ArgumentException($"shard {s.Shard} comes from another boot (vcpus/seed/IPI delays differ from shard {first.Shard})");
            foreach (int vm in s.VmNumbers)
                if (!seen.Add(vm)) throw new ArgumentException($"vm {vm} appears in two shards (overlapping --shard values?)");
            m.Vms += s.Vms;
            m.Parallel += s.Parallel;
            m.VcpusOnline += s.VcpusOnline;
            m.Failures.AddRange(s.Failures);
            m.VmNumbers.AddRange(s.VmNumbers);
            samples.AddRange(s.BringupSamplesUs);
            m.WallSeconds = Math.Max(m.WallSeconds, s.WallSeconds);
            m.SetupSeconds = Math.Max(m.SetupSeconds, s.SetupSeconds);
            m.GuestInstructions += s.GuestInstructions;
            m.PeakResidentBytes = Math.Max(m.PeakResidentBytes, s.PeakResidentBytes);
            if (m.Status == 0) { m.Status = s.Status; m.StatusName = s.StatusName; }
        }
        if (m.Status == 0) m.StatusName = ExitStatuses.Name(0);
        m.VmNumbers.Sort();
        m.Failures.Sort(string.CompareOrdinal);
        samples.Sort();
        m.BringupSamplesUs = samples;
        m.BringupUs = BringupStats.Of(samples);
        m.Mips = m.WallSeconds > 0 ? m.GuestInstructions / m.WallSeconds / 1e6 : 0;
        return m;
    }
}

/// <summary>Per-AP bring-up latency, first INIT sent to the AP online, in host microseconds.</summary>
public sealed class BringupStats
{
    [JsonPropertyName("min")] public double Min { get; set; }
    [JsonPropertyName("median")] public double Median { get; set; }
    [JsonPropertyName("p99")] public double P99 { get; set; }
    [JsonPropertyName("max")] public double Max { get; set; }
    [JsonPropertyName("count")] public int Count { get; set; }

    public static BringupStats Of(List<double> sorted) => sorted.Count == 0 ? new BringupStats() : new BringupStats
    {
        Min = sorted[0], Median = Percentile(sorted, 0.5), P99 = Percentile(sorted, 0.99), Max = sorted[^1], Count = sorted.Count,
    };

    static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
