using System.Diagnostics;
using DynaSmp.Machine;
using DynaSmp.Machine.Guests;
using DynaSmp.Machine.Loaders;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Cli.Commands;

/// <summary>A Linux guest for <see cref="BootRun"/> instead of the built-in one: a bzImage, its initramfs and command
/// line. A VM has booted when the guest powers off (its init's last act); its APs are online once they first idle.</summary>
/// <summary>A Linux kernel for every VM of a fleet; <paramref name="KvmClock"/>: KVM's paravirtual leaves and kvm-clock.
/// <paramref name="Plan"/> is the boot planned once for the fleet's RAM size (the payload decompressed once) and applied
/// to every VM.</summary>
sealed record LinuxGuest(byte[] Kernel, LinuxBootPlan Plan, byte[] Initrd, string CommandLine, bool KvmClock = true);

/// <summary>N VMs booting the built-in guest (or a Linux kernel) concurrently, and what came out of it.</summary>
sealed class BootRun : IDisposable
{
    public readonly List<Pc> Pcs = new();
    /// <summary>The fleet-wide number of each VM in <see cref="Pcs"/> (a shard runs every N-th).</summary>
    public readonly List<int> VmNumbers = new();
    /// <summary>The scheduler seed of each VM with --deterministic, derived from the base seed and the VM's number.</summary>
    public readonly List<int?> Seeds = new();
    public long StartedAt, EndedAt;
    readonly int _cpus;
    readonly Shard _shard;

    public static int TraceCapacity(int cpus, bool trace) => trace ? Math.Max(4096, cpus * 16) : Math.Max(256, cpus * 10);

    /// <summary>Builds the VMs; <paramref name="deadline"/> is checked between them, so set-up counts against --timeout.</summary>
    public BootRun(int vms, int cpus, ulong mem, IpiDelays delays, bool trace, Deadline? deadline = null, int? deterministicSeed = null, Shard? shard = null,
        LinuxGuest? linux = null)
    {
        _linux = linux;
        long setupStart = Stopwatch.GetTimestamp();
        _cpus = cpus;
        _shard = shard ?? Shard.Whole;
        var image = linux == null ? BuiltinGuest.Build(new BuiltinGuestOptions { IpiDelays = delays }) : null;
        var config = new VmConfig
        {
            Vcpus = cpus, MemoryBytes = mem, X2Apic = cpus > 255, Trace = true,
            TraceCapacity = TraceCapacity(cpus, trace),
            // A kernel keeps sending IPIs (TLB shootdowns, reschedules) after bring-up: keep the first events, which
            // hold its INIT/SIPI sequence and so each AP's bring-up start.
            TraceKeepsFirst = linux != null,
            // A Linux guest sees KVM's paravirtual leaves and kvm-clock, as under KVM (VmConfig.KvmParavirt).
            KvmParavirt = linux is { KvmClock: true },
            // A Linux guest touches most of its RAM: huge pages cost no memory there and save faults and TLB misses.
            HugePages = linux != null,
        };
        for (int k = _shard.Index; k < vms; k += _shard.Count)
        {
            deadline?.Check($"set-up ({Pcs.Count} of {_shard.SizeOf(vms)} VMs built)");
            int? seed = deterministicSeed is int b ? DynaSmp.Machine.Storm.StormRun.VmSeed(b, k) : null;
            var pc = new Pc(config with { DeterministicSeed = seed });
            if (linux != null) pc.LoadLinux(linux.Plan);
            else pc.LoadMultiboot(image!);
            Pcs.Add(pc);
            VmNumbers.Add(k);
            Seeds.Add(seed);
        }
        SetupSeconds = Stopwatch.GetElapsedTime(setupStart).TotalSeconds;
    }

    public double SetupSeconds { get; private set; }
    /// <summary>VMs that ran at once (the fleet's window).</summary>
    public int Parallel { get; private set; }

    /// <summary>Creates the host threads of <paramref name="window"/> VMs (set-up, as KVM creates vCPUs before the first
    /// KVM_RUN), collects the young generation, then starts that many VMs; each of the rest starts as one stops.</summary>
    public void Start(int window)
    {
        long prepareStart = Stopwatch.GetTimestamp();
        var fleet = new Fleet(Pcs.Select(p => p.Vm).ToList(), window);
        Parallel = fleet.Window;
        GC.Collect(); // see RunCommand: start with an empty young generation, before any vCPU runs
        SetupSeconds += Stopwatch.GetElapsedTime(prepareStart).TotalSeconds;
        StartedAt = Stopwatch.GetTimestamp();
        fleet.Start();
    }

    /// <summary>Waits for every VM to stop, the deadline or the memory ceiling (see <see cref="Supervisor"/>), calling
    /// <paramref name="progress"/> as they finish. False if the run was cut short.</summary>
    public bool WaitAll(Deadline deadline, long rssCeiling, Action<int>? progress, Action? poll = null)
    {
        bool clean = Supervisor.Watch(Pcs.Select(p => p.Vm).ToList(), deadline, rssCeiling, progress, out bool joined, poll: poll);
        EndedAt = Stopwatch.GetTimestamp();
        Joined = joined;
        return clean;
    }

    /// <summary>Every vCPU thread has ended (only then may the VMs be disposed).</summary>
    public bool Joined { get; private set; } = true;

    readonly LinuxGuest? _linux;

    /// <summary>The built-in guest reports success through isa-debug-exit; a Linux guest's init powers off.</summary>
    public bool Succeeded(Pc pc) => _linux == null ? pc.Vm.ExitKind == VmExitKind.DebugExit && pc.Vm.ExitStatus == 1 : pc.Vm.ExitKind == VmExitKind.PowerOff;

    public BootSummary Summarize()
    {
        var s = new BootSummary
        {
            Vms = Pcs.Count, VcpusPerVm = _cpus, Parallel = Parallel, WallSeconds = (EndedAt - StartedAt) / (double)Stopwatch.Frequency,
            Shard = _shard.ToString(), VmNumbers = VmNumbers, SetupSeconds = SetupSeconds,
        };
        var latencies = new List<double>();
        for (int k = 0; k < Pcs.Count; k++)
        {
            var vm = Pcs[k].Vm;
            var firstInit = FirstInitPerTarget(vm);
            bool ok = Succeeded(Pcs[k]);
            if (ok) s.VcpusOnline++; // the BSP
            int apsOnline = 0;
            foreach (var v in vm.Vcpus)
            {
                unsafe { s.GuestInstructions += v.Core.State->InstructionsRetired; }
                if (v.Id == vm.Config.BspId) continue;
                // Online: the AP's first halt after its start. The built-in guest's AP marks itself online (a port write
                // the host records on its thread) before the BSP can see its check-in, and halts a few instructions
                // later; a BSP that ends the run at once could stop the VM in between, and the AP counted as offline.
                long onlineAt = v.FirstHaltAfterStart;
                if (onlineAt == 0 && _linux == null) onlineAt = v.Stats.FirstPhaseTime(GuestLayout.PhaseApOnline);
                if (onlineAt == 0) continue;
                apsOnline++;
                if (firstInit.TryGetValue(v.Id, out long t0))
                    latencies.Add((onlineAt - t0) * 1e6 / Stopwatch.Frequency);
            }
            s.VcpusOnline += apsOnline;
            if (!ok)
            {
                string why = vm.ExitKind switch
                {
                    VmExitKind.DebugExit => $"isa-debug-exit status {vm.ExitStatus} ({apsOnline} of {_cpus - 1} APs online)",
                    VmExitKind.Reset when _linux != null => $"the kernel reset the machine (a panic with panic=-1?) ({apsOnline} of {_cpus - 1} APs online); serial tail: {Tail(Pcs[k])}",
                    VmExitKind.Timeout => $"no result before the timeout ({apsOnline} of {_cpus - 1} APs online)",
                    _ => $"{vm.ExitKind}: {vm.ExitMessage}",
                };
                s.Failures.Add($"vm {VmNumbers[k]}{(Seeds[k] is int seed ? $" (seed {seed})" : "")}: {why}");
            }
        }
        latencies.Sort();
        s.BringupSamplesUs = latencies;
        s.BringupUs = BringupStats.Of(latencies);
        s.PeakResidentBytes = DynaSmp.Machine.Host.HostCapacity.PeakResidentBytes();
        s.Mips = s.WallSeconds > 0 ? s.GuestInstructions / s.WallSeconds / 1e6 : 0;
        return s;
    }

    static string Tail(Pc pc)
    {
        string o = pc.Devices.Serial.Output.Replace("\r", "").TrimEnd();
        int cut = o.LastIndexOf('\n', Math.Max(0, o.Length - 1));
        return cut < 0 ? o : o[(cut + 1)..];
    }

    /// <summary>Host time of the first INIT latched for each AP, from the senders' trace rings.</summary>
    internal static Dictionary<int, long> FirstInitPerTarget(Vm vm)
    {
        var first = new Dictionary<int, long>();
        foreach (var v in vm.Vcpus)
            foreach (var e in v.Trace.Snapshot())
                if (e.Path == KvmPath.InitLatched && (!first.TryGetValue(e.Target, out long t) || e.Timestamp < t)) first[e.Target] = e.Timestamp;
        return first;
    }

    public void Dispose()
    {
        if (!Joined) return; // threads still run in these VMs: leave them to process exit
        foreach (var pc in Pcs) pc.Dispose();
    }
}
