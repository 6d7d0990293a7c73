using System.CommandLine;
using System.Text.Json;
using DynaSmp.Machine;
using DynaSmp.Machine.Host;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp run KERNEL`: a multiboot kernel with its serial output on stdout. The exit status is what
/// QEMU gives for the same isa-debug-exit write ((value &lt;&lt; 1) | 1), so QEMU scripts work unchanged; every other
/// outcome has its own even status (<see cref="ExitStatus"/>).</summary>
static class RunCommand
{
    public static Command Create()
    {
        var kernel = new Argument<string>("KERNEL") { Description = "a multiboot kernel (ELF or a.out-kludge image)" };
        var smp = CliOptions.Int("--smp", 1, 1, 1024, "vCPUs");
        var mem = CliOptions.Size("--mem", 128UL << 20, "guest RAM");
        var timeout = CliOptions.Seconds("--timeout", 60, "deadline for set-up, run and tear-down");
        var cmdline = CliOptions.Text("--cmdline", "the multiboot command line");
        var json = CliOptions.OutputFile("--json", "write the outcome (status, exit kind, diagnosis) as JSON");
        var c = new Command("run", """
            boot a multiboot kernel; serial on stdout. Exit status as QEMU's isa-debug-exit ((value << 1) | 1, odd),
            or an even status: 2 bad input, 4 triple fault, 6 unsupported, 8 host resources, 70 internal error, 124 timeout
            """) { kernel, smp, mem, timeout, cmdline, json };
        var statsOptions = StatsOptions.AddTo(c);
        c.SetAction(p => Run(p.GetValue(kernel)!, p.GetValue(smp), p.GetValue(mem).Bytes, p.GetValue(timeout), p.GetValue(cmdline) ?? "", p.GetValue(json), StatsOptions.From(p, statsOptions)));
        return c;
    }

    static int Run(string path, int smp, ulong mem, double timeout, string cmdline, string? json, StatsOptions stats)
    {
        var deadline = new Deadline(timeout);
        if (mem > MachineInfo.IoApicBase) throw new UsageException($"--mem: at most {MachineInfo.IoApicBase >> 20} MiB (RAM must end below the APIC pages)");
        HostFiles.CheckOutput(json, "--json");
        var image = HostFiles.ReadInput(path, "kernel image", (long)Math.Min(mem, (ulong)Array.MaxLength), $"--mem {mem >> 20} MiB");
        long ceiling = Admission.Check(1, smp, mem, 0, image.Length, "", "--smp");
        deadline.Check("set-up");

        var stdout = Console.OpenStandardOutput();
        var pc = new Pc(new VmConfig { Vcpus = smp, MemoryBytes = mem, X2Apic = smp > 255, Trace = false, DeterministicSeed = stats.Seed },
            b => { stdout.WriteByte(b); if (b == '\n') stdout.Flush(); });
        bool joined = true;
        try
        {
            pc.LoadMultiboot(image, cmdline);
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
            if (vm.ExitKind != VmExitKind.DebugExit)
                Console.Error.WriteLine($"dynasmp: {Describe(vm)}{(joined ? "" : " (some vCPU threads had not left when the command ended)")}");
            if (vm.Diagnosis is { } diag) Console.Error.WriteLine(diag.Format());
            stats.Write("run", [vm], deadline.Elapsed);
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
