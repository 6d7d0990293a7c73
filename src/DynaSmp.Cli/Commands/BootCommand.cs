using System.CommandLine;
using System.Text.Json;
using DynaSmp.Machine.Guests;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp boot`: the built-in SMP guest in many VMs at once, then a bring-up summary.</summary>
static class BootCommand
{
    public static Command Create()
    {
        var vms = CliOptions.Int("--vms", 1, 1, 1024, "VMs to boot");
        var parallel = CliOptions.Int("--parallel", DefaultWindow(linux: false), 1, 1024,
            "VMs running at once; each of the rest starts when one stops (default: one per two host CPUs for the built-in guest, " +
            "whose bring-up keeps a BSP and an AP busy at once; the host's CPUs for Linux kernels)");
        var cpus = CliOptions.Int("--cpus", 4, 1, 255, "vCPUs per VM");
        var mem = CliOptions.Size("--mem", 64UL << 20, "guest RAM per VM");
        var delays = CliOptions.IpiDelays();
        var json = CliOptions.OutputFile("--json", "write the bring-up summary as JSON");
        var timeout = CliOptions.Seconds("--timeout", 120, "deadline for set-up, run and tear-down");
        var shard = CliOptions.Shard();
        var kernel = CliOptions.Text("--kernel", "boot this Linux bzImage in every VM instead of the built-in guest (a VM has booted when its init powers off)", "FILE");
        var initrd = CliOptions.Text("--initrd", "the initramfs for --kernel", "FILE");
        var append = CliOptions.Text("--append", "the kernel command line for --kernel (default: console=ttyS0 panic=-1)");
        var noKvmClock = CliOptions.Flag("--no-kvmclock", "hide KVM's paravirtual CPUID leaves and kvm-clock from the --kernel guests (as QEMU's -cpu ...,kvmclock=off)");
        var guestDecompress = CliOptions.Flag("--guest-decompress", GuestDecompressHelp);
        var qemu = CliOptions.Flag("--qemu", "then boot the same fleet under QEMU TCG, one process per VM and --parallel (default: the host's CPUs) at a time, and print the speed ratio (installs qemu-system-x86 with apt-get if missing)");
        var c = new Command("boot", "boot the built-in SMP guest (Linux-style INIT/SIPI bring-up), or a Linux kernel, in N VMs at once")
            { vms, parallel, cpus, mem, delays, json, timeout, shard, kernel, initrd, append, noKvmClock, guestDecompress, qemu };
        var statsOptions = StatsOptions.AddTo(c);
        c.SetAction(p => Run(p.GetValue(vms), p.GetResult(parallel) is { Implicit: false } ? p.GetValue(parallel) : null, p.GetValue(cpus), p.GetValue(mem).Bytes, p.GetValue(delays).Value, p.GetValue(json), p.GetValue(timeout),
            StatsOptions.From(p, statsOptions), p.GetValue(shard), LinuxGuestFrom(p.GetValue(kernel), p.GetValue(initrd), p.GetValue(append), p.GetValue(mem).Bytes, !p.GetValue(noKvmClock), p.GetValue(guestDecompress)),
            p.GetValue(qemu)));
        return c;
    }

    /// <summary>The help of `run` and `boot --kernel` for --guest-decompress.</summary>
    internal const string GuestDecompressHelp = "run the bzImage's own decompressor in the guest, as QEMU's -kernel does (default: unpack a gzip, xz or zstd " +
        "payload on the host once and enter the kernel at startup_64, as Firecracker boots a vmlinux; KASLR then stays off)";

    static LinuxGuest? LinuxGuestFrom(string? kernel, string? initrd, string? append, ulong mem, bool kvmClock, bool guestDecompress)
    {
        if (kernel == null)
        {
            if (initrd != null || append != null || !kvmClock || guestDecompress)
                throw new UsageException($"{(initrd != null ? "--initrd" : append != null ? "--append" : !kvmClock ? "--no-kvmclock" : "--guest-decompress")} needs --kernel");
            return null;
        }
        RunCommand.CheckRamBelowApic(mem);
        var (image, rd) = HostFiles.ReadKernel(kernel, initrd, mem);
        if (!DynaSmp.Machine.Pc.IsLinuxImage(image)) throw new UsageException($"--kernel {kernel}: not a Linux bzImage (boot runs Linux kernels; use `run` for multiboot)");
        string commandLine = append ?? "console=ttyS0 panic=-1";
        // Every VM gets the same RAM and kernel: one plan for all, made (and a bad image refused) before any VM is built.
        return new LinuxGuest(image, PlanLinux(image, rd, commandLine, mem, guestDecompress), rd, commandLine, kvmClock);
    }

    /// <summary>The boot of a bzImage for <paramref name="mem"/> bytes of RAM, its payload unpacked on the host (through
    /// the kernel cache) unless <paramref name="guestDecompress"/>; says on stderr which way into the kernel it takes.
    /// Shared by `run` and `boot --kernel`.</summary>
    internal static DynaSmp.Machine.Loaders.LinuxBootPlan PlanLinux(byte[] image, byte[] initrd, string commandLine, ulong mem, bool guestDecompress)
    {
        var opened = DynaSmp.Machine.Loaders.LinuxKernel.Open(image, hostDecompress: !guestDecompress, DynaSmp.Machine.Loaders.KernelCache.Default());
        var plan = DynaSmp.Machine.Loaders.LinuxBootLoader.Plan(opened, mem, commandLine, initrd);
        Console.Error.WriteLine($"dynasmp: {plan.Describe(opened)}");
        return plan;
    }

    /// <summary>The fleet window when --parallel is not given. A VM bringing up the built-in guest keeps two threads busy, the
    /// BSP sending INIT/SIPI and polling for the AP's check-in, and the AP running its trampoline: with one VM per host CPU
    /// each AP waited for a CPU behind the other VM's BSP (64 x 16 on 2 cores, 5 alternated runs each: bring-up median
    /// 37-61 us at 2 VMs, 35-37 us at 1, wall 0.15-0.22 against 0.21-0.25 s). A Linux boot is mostly its BSP's work.</summary>
    static int DefaultWindow(bool linux) => linux ? Environment.ProcessorCount : Math.Max(1, Environment.ProcessorCount / 2);

    static int Run(int fleet, int? parallelGiven, int cpus, ulong mem, IpiDelays delays, string? json, double timeout, StatsOptions stats, Shard shard, LinuxGuest? linux = null,
        bool qemu = false)
    {
        int parallel = parallelGiven ?? DefaultWindow(linux != null);
        int vms = shard.SizeOf(fleet);
        if (vms == 0) throw new UsageException($"--shard {shard}: the fleet of {fleet} VMs has no VM {shard.Index}");
        if (mem < (16UL << 20)) throw new UsageException("--mem: the built-in guest needs at least 16 MiB");
        var deadline = new Deadline(timeout);
        HostFiles.CheckOutput(json, "--json");
        long ceiling = Admission.Check(vms, cpus, mem, BootRun.TraceCapacity(cpus, false), linux == null ? 1 << 20 : linux.Kernel.Length + linux.Initrd.Length, "--vms", "--cpus", parallel);

        int firstChance = 0;
        var kinds = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        if (Environment.GetEnvironmentVariable("DYNASMP_DEBUG_BRINGUP") == "1")
            AppDomain.CurrentDomain.FirstChanceException += (_, e) => { Interlocked.Increment(ref firstChance); kinds.AddOrUpdate(e.Exception.GetType().Name + ":" + e.Exception.Message, 1, (_, n) => n + 1); };
        bool live = !Console.IsOutputRedirected;
        Console.WriteLine($"dynasmp boot: {vms} VM{(vms == 1 ? "" : "s")} x {cpus} vCPU{(cpus == 1 ? "" : "s")}, {mem >> 20} MiB each, " +
                          (vms > parallel ? $"{parallel} at a time, " : "") +
                          (linux == null ? $"IPI delays {delays.ToString().ToLowerInvariant()}" : $"Linux ({linux.Kernel.Length >> 10} KiB bzImage, {linux.Initrd.Length >> 10} KiB initrd)") +
                          (shard == Shard.Whole ? "" : $", shard {shard} of a {fleet}-VM fleet"));
        using var run = new BootRun(fleet, cpus, mem, delays, trace: false, deadline, stats.Seed, shard, linux);
        var progress = new TerminalProgress(run.Pcs.Select(p => p.Vm).ToList(), TerminalProgress.Wanted(json != null));
        run.Start(parallel);
        bool allEnded = run.WaitAll(deadline, ceiling, k =>
        {
            var pc = run.Pcs[k];
            if (!live) Console.WriteLine($"  vm {run.VmNumbers[k]}: {(run.Succeeded(pc) ? "all CPUs online" : $"FAILED ({pc.Vm.ExitKind}: {pc.Vm.ExitMessage})")}");
        }, progress.Tick);
        progress.Clear();

        if (Environment.GetEnvironmentVariable("DYNASMP_DEBUG_BRINGUP") == "1")
        {
            var shown = run.Pcs[Math.Min(run.Pcs.Count - 1, 5)].Vm;
            var firstInit = BootRun.FirstInitPerTarget(shown);
            foreach (var v in shown.Vcpus.Skip(1))
            {
                var ev = v.Trace.Snapshot();
                long sipi = ev.FirstOrDefault(e => e.Path == DynaSmp.Machine.Trace.KvmPath.SipiAccepted).Timestamp;
                long init = ev.FirstOrDefault(e => e.Path == DynaSmp.Machine.Trace.KvmPath.InitAccepted).Timestamp;
                long latched = firstInit.GetValueOrDefault(v.Id);
                double us(long t) => t * 1e6 / System.Diagnostics.Stopwatch.Frequency;
                unsafe { Console.WriteLine($"ap {v.Id}: latched->init {us(init - latched):F1} us, init->sipi {us(sipi - init):F1} us, sipi->halt {us(v.FirstHaltAfterStart - sipi):F1} us, insns {v.Core.State->InstructionsRetired}, interp blocks {v.Core.InterpretedBlocks}, lookups {v.Core.DispatcherLookups}, bring-up polls {v.BringUpPolls} ({v.BringUpPollHits} caught an event)"); }
            }
        }
        if (firstChance > 0) foreach (var kv in kinds) Console.WriteLine($"exception {kv.Key} x{kv.Value}");
        var s = run.Summarize();
        s.IpiDelays = delays.ToString().ToLowerInvariant();
        s.DeterministicSeed = stats.Seed;
        if (vms == 1 && linux == null)
        {
            Console.WriteLine("  guest serial output:");
            foreach (var line in run.Pcs[0].Devices.Serial.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Console.WriteLine($"    | {line.TrimEnd('\r')}");
        }
        PrintSummary(s, allEnded);
        if (!run.Joined) Console.WriteLine("  some vCPU threads had not left when the command ended");
        Console.WriteLine($"  peak memory:       {s.PeakResidentBytes >> 20} MiB resident");
        // QEMU runs its own processes as many at once as given, or one per host CPU (its fastest), not DynaSmp's default window.
        if (qemu) s.Qemu = CompareWithQemu(run, s, linux, delays, vms, cpus, parallelGiven ?? Environment.ProcessorCount, mem, deadline);
        int status = Status(run, s, vms * cpus);
        s.Status = status;
        s.StatusName = ExitStatuses.Name(status);
        stats.Write("boot", run.Pcs.Select(p => p.Vm).ToList(), s.WallSeconds, run.VmNumbers);
        if (json != null)
            HostFiles.WriteOutput(json, "--json", f => JsonSerializer.Serialize(f, s, new JsonSerializerOptions { WriteIndented = true }));
        return status;
    }

    static QemuFleetSummary? CompareWithQemu(BootRun run, BootSummary s, LinuxGuest? linux, IpiDelays delays, int vms, int cpus, int parallel, ulong mem, Deadline deadline)
    {
        var notes = new List<string>();
        if (QemuReference.FindOrInstall(notes, "boot") is not { } binary)
        {
            foreach (var n in notes) Console.WriteLine($"  {n}");
            return null;
        }
        var image = linux?.Kernel ?? BuiltinGuest.Build(new BuiltinGuestOptions { IpiDelays = delays });
        var q = QemuFleet.Run(binary, image, linux, vms, cpus, Math.Min(parallel, vms), mem, deadline);
        q.DynaSmpSeconds = s.SetupSeconds + s.WallSeconds;
        q.Speed = q.DynaSmpSeconds > 0 ? q.WallSeconds / q.DynaSmpSeconds : 0;
        Console.WriteLine($"  QEMU TCG:          {q.VmsBooted} of {vms} VMs booted in {q.WallSeconds:F3} s (one process per VM, {Math.Min(parallel, vms)} at a time); " +
                          $"DynaSmp {q.DynaSmpSeconds:F3} s (set-up + run): {q.Speed:F1}x");
        foreach (var f in q.Failures.Take(5)) Console.WriteLine($"  QEMU FAILURE {f}");
        return q;
    }

    /// <summary>The bring-up lines shared by boot and merge.</summary>
    internal static void PrintSummary(BootSummary s, bool allEnded = true)
    {
        int vms = s.Vms, cpus = s.VcpusPerVm;
        Console.WriteLine($"  VMs booted:        {vms - s.Failures.Count} of {vms}{(allEnded ? "" : " (timeout)")}");
        Console.WriteLine($"  vCPUs online:      {s.VcpusOnline} of {vms * cpus}");
        if (s.BringupUs.Count > 0)
            Console.WriteLine($"  AP bring-up (us):  min {s.BringupUs.Min:F1}  median {s.BringupUs.Median:F1}  p99 {s.BringupUs.P99:F1}  max {s.BringupUs.Max:F1}  ({s.BringupUs.Count} APs, first INIT -> online)");
        Console.WriteLine($"  wall time:         {s.WallSeconds:F3} s (first vCPU start to last VM stop; set-up before it {s.SetupSeconds:F3} s)");
        Console.WriteLine($"  guest instructions {s.GuestInstructions:N0} ({s.Mips:F0} MIPS)");
        foreach (var f in s.Failures.Take(20)) Console.WriteLine($"  FAILURE {f}");
        if (s.Failures.Count > 20) Console.WriteLine($"  ... and {s.Failures.Count - 20} more failures");
    }

    /// <summary>0 when every vCPU came online; otherwise the status of the most telling failure (timeout and host
    /// limits first, then DynaSmp bugs, then guest deaths), or GuestFailed when the guest itself reported failure.</summary>
    internal static int Status(BootRun run, BootSummary s, int vcpus)
    {
        if (s.Failures.Count == 0 && s.VcpusOnline == vcpus) return (int)ExitStatus.Success;
        var kinds = run.Pcs.Select(p => p.Vm.ExitKind).ToHashSet();
        foreach (var k in new[] { DynaSmp.Machine.VmExitKind.Timeout, DynaSmp.Machine.VmExitKind.HostResources, DynaSmp.Machine.VmExitKind.InternalError,
                     DynaSmp.Machine.VmExitKind.Unsupported, DynaSmp.Machine.VmExitKind.TripleFault, DynaSmp.Machine.VmExitKind.GuestError })
            if (kinds.Contains(k)) return ExitStatuses.ForVm(run.Pcs.First(p => p.Vm.ExitKind == k).Vm);
        return (int)ExitStatus.GuestFailed;
    }
}
