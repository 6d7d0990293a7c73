using System.Text.Json.Serialization;

namespace DynaSmp.Machine.Storm;

/// <summary>`dynasmp storm --json` output and `dynasmp merge` input; the field names are the contract.</summary>
public sealed class StormReport
{
    [JsonPropertyName("config")] public StormConfig Config { get; set; } = new();
    [JsonPropertyName("shard")] public string Shard { get; set; } = "0/1";
    [JsonPropertyName("vms_run")] public int VmsRun { get; set; }
    [JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    [JsonPropertyName("events")] public long Events { get; set; }
    [JsonPropertyName("events_by_type")] public SortedDictionary<string, long> EventsByType { get; set; } = new();
    [JsonPropertyName("events_per_s")] public double EventsPerSecond { get; set; }
    [JsonPropertyName("scheduler_turns")] public long Turns { get; set; }
    [JsonPropertyName("latency_ns")] public SortedDictionary<string, LatencySummary> Latency { get; set; } = new();
    /// <summary>Allocated managed bytes between the end of warm-up and the end of the run (target: 0).</summary>
    /// <summary>What the run loop allocated after warm-up (process total minus translation and the progress line).</summary>
    [JsonPropertyName("steady_state_allocated_bytes")] public long SteadyStateAllocatedBytes { get; set; }
    /// <summary>What decoding and compiling code first reached after warm-up allocated in the same window.</summary>
    [JsonPropertyName("steady_state_translation_bytes")] public long SteadyStateTranslationBytes { get; set; }
    /// <summary>Set when the storm stopped because the process passed its admission memory ceiling.</summary>
    [JsonPropertyName("host_resources")] public string? HostResources { get; set; }
    [JsonPropertyName("violations")] public int Violations => Failures.Count;
    [JsonPropertyName("failures")] public List<StormFailure> Failures { get; set; } = new();
    /// <summary>Per-VM results: what replay and merge work from.</summary>
    [JsonPropertyName("vm_results")] public List<StormVmResult> VmResults { get; set; } = new();
}

/// <summary>The command line a report came from (replay re-runs it).</summary>
public sealed class StormConfig
{
    [JsonPropertyName("vms")] public int Vms { get; set; } = 1;
    [JsonPropertyName("cpus")] public int Cpus { get; set; } = 4;
    [JsonPropertyName("seed")] public int Seed { get; set; } = 1;
    [JsonPropertyName("events")] public long? Events { get; set; }
    [JsonPropertyName("duration_s")] public double? DurationSeconds { get; set; }
    [JsonPropertyName("deterministic")] public bool Deterministic { get; set; }
    [JsonPropertyName("x2apic")] public bool X2Apic { get; set; } = true;
}

public sealed class LatencySummary
{
    [JsonPropertyName("count")] public long Count { get; set; }
    [JsonPropertyName("p50")] public double P50 { get; set; }
    [JsonPropertyName("p90")] public double P90 { get; set; }
    [JsonPropertyName("p99")] public double P99 { get; set; }
    [JsonPropertyName("p999")] public double P999 { get; set; }
    [JsonPropertyName("max")] public double Max { get; set; }
    /// <summary>The samples, as non-empty [bin, count] pairs of <see cref="LatencyHistogram"/>: merge re-derives percentiles.</summary>
    [JsonPropertyName("bins")] public List<long[]> Bins { get; set; } = new();

    public static LatencySummary Of(LatencyHistogram h, double ticksPerNs)
    {
        var s = new LatencySummary { Count = h.Total, Bins = h.Sparse() };
        s.P50 = h.Percentile(0.5) / ticksPerNs; s.P90 = h.Percentile(0.9) / ticksPerNs;
        s.P99 = h.Percentile(0.99) / ticksPerNs; s.P999 = h.Percentile(0.999) / ticksPerNs; s.Max = h.Percentile(1) / ticksPerNs;
        return s;
    }
}

public sealed class StormFailure
{
    [JsonPropertyName("vm")] public int Vm { get; set; }
    [JsonPropertyName("seed")] public int Seed { get; set; }
    [JsonPropertyName("invariant")] public string Invariant { get; set; } = "";
    [JsonPropertyName("detail")] public string Detail { get; set; } = "";
    [JsonPropertyName("at_event")] public long AtEvent { get; set; }
    [JsonPropertyName("trace_file")] public string? TraceFile { get; set; }
}

public sealed class StormVmResult
{
    [JsonPropertyName("vm")] public int Vm { get; set; }
    [JsonPropertyName("seed")] public int Seed { get; set; }
    [JsonPropertyName("events")] public long Events { get; set; }
    [JsonPropertyName("turns")] public long Turns { get; set; }
    [JsonPropertyName("exit")] public string Exit { get; set; } = "";
    [JsonPropertyName("check_ins")] public long CheckIns { get; set; }
    [JsonPropertyName("starts")] public long Starts { get; set; }
    /// <summary>SHA-256 of the full trace text (deterministic runs: equal across replays and machines).</summary>
    [JsonPropertyName("trace_sha256")] public string? TraceSha256 { get; set; }
}
