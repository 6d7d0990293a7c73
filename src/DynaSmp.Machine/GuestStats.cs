using System.Text.Json.Serialization;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine.Apic;

namespace DynaSmp.Machine;

/// <summary>
/// `--stats` of one VM: guest-side metrics that do not depend on the host's speed (retired instructions, exits, IPIs,
/// halts, TLB flushes, translations, bring-up and phase marks in guest instructions). In deterministic mode every
/// number here except those under <c>host</c> is identical run to run, so `dynasmp compare` can demand exact equality.
/// </summary>
public sealed class VmStats
{
    [JsonPropertyName("vm")] public int Index { get; set; }
    [JsonPropertyName("exit_kind")] public string ExitKind { get; set; } = "";
    [JsonPropertyName("exit_status")] public int? ExitStatus { get; set; }
    [JsonPropertyName("schedule_steps")] public long ScheduleSteps { get; set; }
    [JsonPropertyName("retired")] public ulong Retired { get; set; }
    /// <summary>Blocks decoded into this VM's cache, compiled to tier 1, and invalidated by stores into code.</summary>
    [JsonPropertyName("blocks_translated")] public long BlocksTranslated { get; set; }
    [JsonPropertyName("blocks_compiled")] public long BlocksCompiled { get; set; }
    [JsonPropertyName("blocks_invalidated")] public long BlocksInvalidated { get; set; }
    [JsonPropertyName("vcpus")] public List<VcpuStatsReport> Vcpus { get; set; } = new();

    /// <summary>Reads the counters of a stopped (or still running: then approximate) VM.</summary>
    public static VmStats Capture(Vm vm, int index)
    {
        var r = new VmStats
        {
            Index = index, ExitKind = vm.ExitKind.ToString(), ExitStatus = vm.ExitStatus, ScheduleSteps = vm.ScheduleSteps,
            BlocksTranslated = vm.Cache.Translations, BlocksCompiled = vm.Cache.Compilations, BlocksInvalidated = vm.Cache.Invalidations,
        };
        foreach (var v in vm.Vcpus)
        {
            var c = VcpuStatsReport.Capture(v);
            r.Retired += c.Retired;
            r.Vcpus.Add(c);
        }
        return r;
    }
}

/// <summary>One vCPU's part of <see cref="VmStats"/>.</summary>
public sealed class VcpuStatsReport
{
    [JsonPropertyName("id")] public int Id { get; set; }
    [JsonPropertyName("retired")] public ulong Retired { get; set; }
    /// <summary>Returns of the core to the KVM_RUN loop by reason, then the accesses a hardware hypervisor exits for.</summary>
    [JsonPropertyName("exits")] public SortedDictionary<string, long> Exits { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("ipis_sent")] public SortedDictionary<string, long> IpisSent { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("ipis_received")] public SortedDictionary<string, long> IpisReceived { get; set; } = new(StringComparer.Ordinal);
    [JsonPropertyName("halts")] public long Halts { get; set; }
    [JsonPropertyName("halt_noops")] public long HaltNoops { get; set; }
    [JsonPropertyName("wakeups")] public long Wakeups { get; set; }
    [JsonPropertyName("init_resets")] public long InitResets { get; set; }
    [JsonPropertyName("sipi_starts")] public long SipiStarts { get; set; }
    [JsonPropertyName("tlb_flushes")] public long TlbFlushes { get; set; }
    [JsonPropertyName("blocks_decoded")] public long BlocksDecoded { get; set; }
    [JsonPropertyName("code_write_invalidations")] public long CodeWriteInvalidations { get; set; }
    /// <summary>An AP's bring-up: the whole VM's retired instructions from the first INIT reaching it to its first HLT
    /// after STARTUP (null for the BSP and for APs that never came online).</summary>
    [JsonPropertyName("bringup_vm_instructions")] public ulong? BringupVmInstructions { get; set; }
    /// <summary>The same bring-up in virtual nanoseconds of the deterministic clock (null when free-running: see host).</summary>
    [JsonPropertyName("bringup_virtual_ns")] public long? BringupVirtualNs { get; set; }
    [JsonPropertyName("phases")] public List<PhaseMark> Phases { get; set; } = new();
    [JsonPropertyName("phases_dropped")] public int PhasesDropped { get; set; }
    /// <summary>Host-time figures: informational, never compared exactly.</summary>
    [JsonPropertyName("host")] public VcpuHostTimes Host { get; set; } = new();

    static string Snake<T>(T value) where T : struct, Enum => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    internal static VcpuStatsReport Capture(Vcpu v)
    {
        var s = v.Stats;
        var r = new VcpuStatsReport
        {
            Id = v.Id, Retired = v.Retired, Halts = v.Halts, HaltNoops = v.HaltNoops, Wakeups = v.Wakeups,
            InitResets = v.InitResets, SipiStarts = v.SipiStarts, TlbFlushes = v.Core.Mmu.TlbFlushes,
            BlocksDecoded = v.Core.BlocksDecoded, CodeWriteInvalidations = v.Core.CodeWriteInvalidations,
            PhasesDropped = s.PhasesDropped,
        };
        foreach (var reason in Enum.GetValues<ExitReason>()) r.Exits[Snake(reason)] = s.Exits[(int)reason];
        r.Exits["port_io"] = s.PortIo;
        r.Exits["lapic_mmio"] = s.LapicMmio;
        r.Exits["other_mmio"] = s.OtherMmio;
        foreach (var mode in Enum.GetValues<DeliveryMode>())
        {
            r.IpisSent[Snake(mode)] = s.IpiSent[(int)mode];
            r.IpisReceived[Snake(mode)] = Volatile.Read(ref s.IpiReceived[(int)mode]);
        }
        var clock = v.Vm.Clock;
        bool online = v.Id != v.Vm.Config.BspId && v.FirstHaltAfterStart != 0 && s.FirstInitAt != 0;
        if (online)
        {
            r.BringupVmInstructions = s.OnlineVmInstructions - s.FirstInitVmInstructions;
            long ticks = v.FirstHaltAfterStart - s.FirstInitAt;
            if (clock.IsVirtual) r.BringupVirtualNs = ticks * 1_000_000_000 / clock.Frequency;
            else r.Host.BringupUs = ticks * 1e6 / clock.Frequency;
        }
        for (int k = 0; k < s.Phases; k++)
        {
            long since = s.PhaseTimes[k] - v.Vm.StartedAt;
            r.Phases.Add(new PhaseMark { Phase = s.PhaseNumbers[k], Retired = s.PhaseInstructions[k], VirtualNs = clock.IsVirtual ? since * 1_000_000_000 / clock.Frequency : null });
            if (!clock.IsVirtual) r.Host.PhaseUs.Add(since * 1e6 / clock.Frequency);
        }
        return r;
    }
}

/// <summary>A phase the guest marked by writing its number to <see cref="MachineInfo.PhasePort"/>.</summary>
public sealed class PhaseMark
{
    [JsonPropertyName("phase")] public uint Phase { get; set; }
    /// <summary>The marking vCPU's retired instructions, as its core last published them (block granularity).</summary>
    [JsonPropertyName("retired")] public ulong Retired { get; set; }
    /// <summary>Deterministic mode: virtual nanoseconds since the VM started (null when free-running: see host).</summary>
    [JsonPropertyName("virtual_ns")] public long? VirtualNs { get; set; }
}

/// <summary>Host-clock times of one vCPU (they vary with the host's load).</summary>
public sealed class VcpuHostTimes
{
    /// <summary>Free-running: the AP's bring-up (first INIT to online) in host microseconds.</summary>
    [JsonPropertyName("bringup_us")] public double? BringupUs { get; set; }
    /// <summary>Free-running: host time of each phase mark since the VM started, in the order of <see cref="VcpuStatsReport.Phases"/>.</summary>
    [JsonPropertyName("phase_us")] public List<double> PhaseUs { get; set; } = new();
}
