using System.Diagnostics;
using System.CommandLine;
using System.Text.Json;
using DynaSmp.Machine;
using DynaSmp.Machine.Host;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp run KERNEL`: a multiboot kernel or a Linux bzImage (with --initrd/--append) with its serial
/// output on stdout and stdin fed to the guest's serial port. The exit status is what
/// QEMU gives for the same isa-debug-exit write ((value &lt;&lt; 1) | 1), so QEMU scripts work unchanged; every other
/// outcome has its own even status (<see cref="ExitStatus"/>).</summary>
static class RunCommand
{
    public static Command Create()
    {
        var kernel = new Argument<string>("KERNEL") { Description = "a multiboot kernel (ELF or a.out-kludge image) or a Linux bzImage" };
        var smp = CliOptions.Int("--smp", 1, 1, 1024, "vCPUs");
        var mem = CliOptions.Size("--mem", 128UL << 20, "guest RAM");
        var timeout = CliOptions.Seconds("--timeout", 60, "deadline for set-up, run and tear-down");
        var cmdline = CliOptions.Text("--cmdline", "the kernel command line (multiboot or Linux)");
        var append = CliOptions.Text("--append", "the Linux kernel command line (as QEMU's -append; same as --cmdline)");
        var initrd = CliOptions.Text("--initrd", "an initramfs for a Linux bzImage", "FILE");
        var json = CliOptions.OutputFile("--json", "write the outcome (status, exit kind, diagnosis) as JSON");
        var trace = CliOptions.OutputFile("--trace", "write the APIC event timeline (the first events of each vCPU)");
        var noKvmClock = CliOptions.Flag("--no-kvmclock", "hide KVM's paravirtual CPUID leaves and kvm-clock from a Linux guest (as QEMU's -cpu ...,kvmclock=off)");
        var guestDecompress = CliOptions.Flag("--guest-decompress", BootCommand.GuestDecompressHelp);
        var c = new Command("run", """
            boot a multiboot kernel or a Linux bzImage; serial on stdout (stdin to COM1). Exit status as QEMU's isa-debug-exit ((value << 1) | 1, odd),
            or an even status: 2 bad input, 4 triple fault, 6 unsupported, 8 host resources, 70 internal error, 124 timeout
            """) { kernel, smp, mem, timeout, cmdline, append, initrd, json, trace, noKvmClock, guestDecompress };
        var statsOptions = StatsOptions.AddTo(c);
        c.SetAction(p => Run(p.GetValue(kernel)!, p.GetValue(smp), p.GetValue(mem).Bytes, p.GetValue(timeout), p.GetValue(append) ?? p.GetValue(cmdline) ?? "",
            p.GetValue(initrd), p.GetValue(json), p.GetValue(trace), StatsOptions.From(p, statsOptions), !p.GetValue(noKvmClock), p.GetValue(guestDecompress)));
        return c;
    }

    /// <summary>Guest RAM is one range from 0 and must end below the IOAPIC/LAPIC pages.</summary>
    internal static void CheckRamBelowApic(ulong mem)
    {
        if (mem > MachineInfo.IoApicBase) throw new UsageException($"--mem: at most {MachineInfo.IoApicBase >> 20} MiB (RAM must end below the APIC pages)");
    }

    static int Run(string path, int smp, ulong mem, double timeout, string cmdline, string? initrdPath, string? json, string? trace, StatsOptions stats,
        bool kvmClock, bool guestDecompress)
    {
        var deadline = new Deadline(timeout);
        CheckRamBelowApic(mem);
        HostFiles.CheckOutput(json, "--json");
        HostFiles.CheckOutput(trace, "--trace");
        var (image, initrd) = HostFiles.ReadKernel(path, initrdPath, mem);
        bool linux = Pc.IsLinuxImage(image);
        if (initrdPath != null && !linux) throw new UsageException("--initrd needs a Linux bzImage; the kernel is not one");
        if (guestDecompress && !linux) throw new UsageException("--guest-decompress needs a Linux bzImage; the kernel is not one");
        long ceiling = Admission.Check(1, smp, mem, trace != null ? TraceEvents : 0, image.Length, "", "--smp");
        deadline.Check("set-up");

        using var stdout = new SerialConsoleOut(Console.OpenStandardOutput());
        var pc = new Pc(new VmConfig { Vcpus = smp, MemoryBytes = mem, X2Apic = smp > 255, DeterministicSeed = stats.Seed, KvmParavirt = linux && kvmClock, HugePages = linux,
                Trace = trace != null, TraceCapacity = trace != null ? TraceEvents : 16, TraceKeepsFirst = true },
            stdout.Write);
        bool joined = true;
        try
        {
            if (linux) pc.LoadLinux(BootCommand.PlanLinux(image, initrd, cmdline, mem, guestDecompress));
            else pc.LoadMultiboot(image, cmdline);
            StartConsoleInput(pc);
            deadline.Check("set-up");
            // Start the run with an empty young generation: a collection must stop every vCPU thread, which is slow
            // when hundreds of them spin on a few host cores.
            GC.Collect();
            pc.Vm.Start();
            if (Environment.GetEnvironmentVariable("DYNASMP_DEBUG_DEADLINE") == "1") Console.Error.WriteLine($"[{deadline.Elapsed:F3}] started alloc {GC.GetTotalAllocatedBytes(true)}");
            var progress = new TerminalProgress([pc.Vm], TerminalProgress.Wanted(json != null) && Console.IsOutputRedirected);
            Supervisor.Watch([pc.Vm], deadline, ceiling, null, out joined, poll: progress.Tick);
            progress.Clear();
            stdout.Flush();
            int status = ExitStatuses.ForVm(pc.Vm);
            var vm = pc.Vm;
            if (vm.ExitKind is not (VmExitKind.DebugExit or VmExitKind.PowerOff))
                Console.Error.WriteLine($"dynasmp: {Describe(vm)}{(joined ? "" : " (some vCPU threads had not left when the command ended)")}");
            if (vm.Diagnosis is { } diag) Console.Error.WriteLine(diag.Format());
            if (vm.ExitKind == VmExitKind.Timeout) PrintVcpuStates(vm);
            if (pc.Vm.Config.Jit.ProfileFallbacks) WorkloadSuite.PrintTierProfile(vm);
            stats.Write("run", [vm], deadline.Elapsed);
            if (trace != null)
                HostFiles.WriteOutput(trace, "--trace", f =>
                {
                    using var w = new StreamWriter(f);
                    TraceCommand.WriteTimeline(w, TraceCommand.Events(vm), vm.Clock.Frequency,
                        $"APIC events of `dynasmp run` with {smp} vCPUs (the first {TraceEvents} per vCPU); times in us from the first event");
                });
            if (json != null)
            {
                var report = new RunReport
                {
                    Status = status, StatusName = ExitStatuses.Name(status), ExitKind = vm.ExitKind.ToString(), Message = vm.ExitMessage,
                    Vcpus = smp, MemoryBytes = mem, WallSeconds = deadline.Elapsed, PeakResidentBytes = HostCapacity.PeakResidentBytes(),
                    Diagnosis = vm.Diagnosis,
                };
                HostFiles.WriteOutput(json, "--json", s => JsonSerializer.Serialize(s, report, RunReport.Options));
            }
            return status;
        }
        finally
        {
            if (joined) pc.Dispose();
        }
    }

    // Per vCPU, kept from the start: enough for a Linux boot's INIT/SIPI sequence and its first IPIs.
    const int TraceEvents = 16384;

    /// <summary>Host stdin to the guest's COM1 receiver, so a user can type into the guest's shell. A background
    /// thread blocked in read; it ends with the process.</summary>
    static void StartConsoleInput(Pc pc)
    {
        var serial = pc.Devices.Serial;
        var t = new Thread(() =>
        {
            try
            {
                // fd 0 as a plain file, not Console's stdin stream: a read blocked there held up Console.Error writes
                // (the timeout message), so the deadline's last-resort exit fired before the JSON was written.
                using var stdin = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, 1);
                var buf = new byte[256];
                int n;
                while ((n = stdin.Read(buf, 0, buf.Length)) > 0) serial.EnqueueInput(buf.AsSpan(0, n));
            }
            catch (IOException) { } // stdin closed or unreadable: the guest just gets no input
        }, 64 * 1024) { IsBackground = true, Name = "DynaSmp console input" };
        t.Start();
    }

    /// <summary>After a timeout: where every vCPU stood, and what its LAPIC held, so a hung guest says whether it was
    /// spinning, halted with nothing to wake it, or halted with an interrupt it never took.</summary>
    static unsafe void PrintVcpuStates(Vm vm)
    {
        foreach (var v in vm.Vcpus)
        {
            var s = v.Core.State;
            if (s == null) continue;
            string Vectors(int first)
            {
                var set = new List<string>();
                for (int w = 0; w < 8; w++)
                {
                    uint bits = v.Apic.ReadRegister(first + w * 0x10);
                    for (int b = 0; b < 32; b++) if ((bits & (1u << b)) != 0) set.Add($"0x{w * 32 + b:x2}");
                }
                return set.Count == 0 ? "-" : string.Join(",", set);
            }
            Console.Error.WriteLine($"dynasmp: vCPU {v.Id}: {v.MpState}, rip 0x{s->Rip:x}, rflags 0x{DynaSmp.Jit.Cpu.Flags.Get(s):x}, " +
                $"shadow {s->InterruptShadow}, pending IPIs 0x{v.Apic.Pending.Bits:x}, TPR 0x{v.Apic.ReadRegister(0x80):x}, IRR {Vectors(0x200)}, ISR {Vectors(0x100)}, LVT timer 0x{v.Apic.ReadRegister(0x320):x}, " +
                $"timer deadline {(v.Apic.TimerDeadline == long.MaxValue ? "none" : $"{Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), v.Apic.TimerDeadline).TotalMilliseconds:F1} ms from now")}, " +
                $"TSC deadline {(v.Apic.TscDeadline == 0 ? "none" : $"{(long)(v.Apic.TscDeadline - v.Core.ReadTsc()) / 1e6:F1} ms of TSC from now")}, {s->InstructionsRetired:N0} instructions retired");
        }
    }

    static string Describe(Vm vm) => vm.ExitKind switch
    {
        VmExitKind.TripleFault => $"the guest triple-faulted (shutdown): {vm.ExitMessage}",
        VmExitKind.Unsupported => $"{vm.ExitMessage}",
        VmExitKind.Timeout => $"{vm.ExitMessage}",
        VmExitKind.HostResources => $"{vm.ExitMessage}",
        VmExitKind.InternalError => $"internal error (a DynaSmp bug, please report it): {vm.ExitMessage}",
        _ => $"{vm.ExitKind}: {vm.ExitMessage}",
    };
}

/// <summary>`dynasmp run --json` output.</summary>
public sealed class RunReport
{
    internal static readonly JsonSerializerOptions Options = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    [System.Text.Json.Serialization.JsonPropertyName("status")] public int Status { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("status_name")] public string StatusName { get; set; } = "";
    [System.Text.Json.Serialization.JsonPropertyName("exit_kind")] public string ExitKind { get; set; } = "";
    [System.Text.Json.Serialization.JsonPropertyName("message")] public string? Message { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("vcpus")] public int Vcpus { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("memory_bytes")] public ulong MemoryBytes { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("wall_s")] public double WallSeconds { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("peak_resident_bytes")] public long PeakResidentBytes { get; set; }
    /// <summary>Triple fault or unsupported feature: the dying vCPU's state (null otherwise).</summary>
    [System.Text.Json.Serialization.JsonPropertyName("diagnosis")] public GuestDiagnosis? Diagnosis { get; set; }
}
