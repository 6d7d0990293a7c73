using System.Text.Json.Serialization;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp boot --json` output; the field names are the contract CI tools read.</summary>
public sealed class BootSummary
{
    [JsonPropertyName("vms")] public int Vms { get; set; }
    [JsonPropertyName("vcpus_per_vm")] public int VcpusPerVm { get; set; }
    [JsonPropertyName("vcpus_online")] public int VcpusOnline { get; set; }
    [JsonPropertyName("failures")] public List<string> Failures { get; set; } = new();
    [JsonPropertyName("bringup_us")] public BringupStats BringupUs { get; set; } = new();
    [JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    [JsonPropertyName("guest_instructions")] public ulong GuestInstructions { get; set; }
    [JsonPropertyName("mips")] public double Mips { get; set; }
    [JsonPropertyName("peak_resident_bytes")] public long PeakResidentBytes { get; set; }
    [JsonPropertyName("status")] public int Status { get; set; }
    [JsonPropertyName("status_name")] public string StatusName { get; set; } = "";
    [JsonPropertyName("ipi_delays")] public string IpiDelays { get; set; } = "none";
}

/// <summary>Per-AP bring-up latency, first INIT sent to the AP online, in host microseconds.</summary>
public sealed class BringupStats
{
    [JsonPropertyName("min")] public double Min { get; set; }
    [JsonPropertyName("median")] public double Median { get; set; }
    [JsonPropertyName("p99")] public double P99 { get; set; }
    [JsonPropertyName("max")] public double Max { get; set; }
    [JsonPropertyName("count")] public int Count { get; set; }
}
