using System.Text;
using DynaSmp.Machine;

namespace DynaSmp.Tests.Platform;

/// <summary>Runs only when <see cref="LinuxKernelTests.KernelVariable"/> names a bzImage (e.g. Debian's
/// /boot/vmlinuz-6.1.0-*-amd64); skipped with the reason otherwise, since no kernel ships with the repository.
/// `.ci/run` fetches one with `.ci/fetch-linux` (the distribution's current kernel and busybox-static, no root).</summary>
public sealed class LinuxKernelFactAttribute : FactAttribute
{
    public LinuxKernelFactAttribute()
    {
        string? path = Environment.GetEnvironmentVariable(LinuxKernelTests.KernelVariable);
        if (string.IsNullOrEmpty(path))
            Skip = $"{LinuxKernelTests.KernelVariable} is not set: set it to a Linux bzImage (and {LinuxKernelTests.BusyboxVariable} to a static " +
                   $"busybox, or {LinuxKernelTests.InitrdVariable} to an initramfs whose init powers off) to boot a real kernel; .ci/fetch-linux fetches both " +
                   "(.ci/run does so unless DYNASMP_CI_LINUX=0)";
        else if (!File.Exists(path))
            Skip = $"{LinuxKernelTests.KernelVariable}={path} does not exist";
    }
}

/// <summary><see cref="LinuxKernelFactAttribute"/> for a theory: skipped with the same reasons.</summary>
public sealed class LinuxKernelTheoryAttribute : TheoryAttribute
{
    public LinuxKernelTheoryAttribute() => Skip = new LinuxKernelFactAttribute().Skip;
}

/// <summary>A real distribution kernel under DynaSmp at 1, 4 and 8 vCPUs: Linux brings up every CPU with its own
/// INIT/SIPI, and with an initramfs whose init powers off, the run ends through ACPI S5 with status 0.</summary>
public class LinuxKernelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public const string KernelVariable = "DYNASMP_LINUX_KERNEL", InitrdVariable = "DYNASMP_LINUX_INITRD", BusyboxVariable = "DYNASMP_LINUX_BUSYBOX";

    /// <summary>An initramfs whose init reports what userspace sees (CPUs online, a floating-point printf through
    /// busybox's awk) and powers off.</summary>
    static byte[] BusyboxInitramfs(string busybox) => new Initramfs()
        .Dir("bin").Dir("dev").Dir("proc").Dir("sys")
        .Device("dev/console", 5, 1)
        .File("bin/busybox", File.ReadAllBytes(busybox), executable: true)
        .Link("bin/sh", "busybox")
        .File("init", Encoding.ASCII.GetBytes(InitScript), executable: true)
        .Build();

    const string InitScript = """
        #!/bin/sh
        /bin/busybox mount -t proc proc /proc
        echo "init: cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)"
        /bin/busybox awk 'BEGIN { printf "init: fp=%.6f\n", 22 / 7 }'
        /bin/busybox poweroff -f

        """;

    const string CommandLine = "console=ttyS0 earlyprintk=serial panic=-1";

    /// <summary>Set to 1 to boot at 1 and 8 vCPUs as well as 4. CI boots 4 only: the three boots beside QEMU took 2.2
    /// minutes alone on a 2-core host, and in one full-suite run under heavy load the 8-vCPU guest stopped printing after
    /// its init's last line (not yet understood; not seen in standalone runs).</summary>
    public const string AllSmpVariable = "DYNASMP_LINUX_ALL_SMP";

    /// <summary>The vCPU counts to boot: 4 always; 1 and 8 when <see cref="AllSmpVariable"/> is 1.</summary>
    public static TheoryData<int> SmpCounts()
    {
        bool all = Environment.GetEnvironmentVariable(AllSmpVariable) == "1";
        var rows = new TheoryData<int>();
        if (all) rows.Add(1);
        rows.Add(4);
        if (all) rows.Add(8);
        return rows;
    }

    /// <summary>The kernel with <paramref name="smp"/> vCPUs under DynaSmp and, in the same run, under QEMU TCG (when it
    /// is on PATH, or required by CI): both serial logs must show every CPU brought up, the init's lines and the HPET as
    /// QEMU's; both logs and the times to the init's first line are printed side by side. No time is asserted (machines
    /// here are noisy).</summary>
    [LinuxKernelTheory]
    [MemberData(nameof(SmpCounts))]
    public void Real_kernel_brings_up_every_cpu_and_powers_off_side_by_side_with_qemu(int smp)
    {
        string kernelPath = Environment.GetEnvironmentVariable(KernelVariable)!;
        var kernel = File.ReadAllBytes(kernelPath);
        string? initrdPath = Environment.GetEnvironmentVariable(InitrdVariable), busybox = Environment.GetEnvironmentVariable(BusyboxVariable);
        byte[] initrd = !string.IsNullOrEmpty(initrdPath) ? File.ReadAllBytes(initrdPath)
            : !string.IsNullOrEmpty(busybox) ? BusyboxInitramfs(busybox) : [];
        bool ourInit = string.IsNullOrEmpty(initrdPath) && !string.IsNullOrEmpty(busybox);

        var serial = new StringBuilder();
        double? dynaInit = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var pc = new Pc(new VmConfig { Vcpus = smp, MemoryBytes = 256UL << 20, Trace = false, KvmParavirt = true }, b =>
        {
            lock (serial)
            {
                serial.Append((char)b);
                if (dynaInit == null && b == '\n' && serial.ToString().Contains("init: cpus=")) dynaInit = clock.Elapsed.TotalSeconds;
            }
        });
        var opened = DynaSmp.Machine.Loaders.LinuxKernel.Open(kernel);
        var plan = pc.LoadLinux(opened, initrd, CommandLine);
        output.WriteLine($"DynaSmp: {plan.Describe(opened)}");
        if (DynaSmp.Machine.Loaders.KernelPayload.CanDecompress(opened.PayloadFormat)) Assert.True(plan.HostDecompressed, plan.GuestDecompressesBecause);
        pc.Vm.Start();
        bool exited = pc.Vm.WaitForExit(TimeSpan.FromMinutes(15));
        pc.Vm.Join();
        double dynaTotal = clock.Elapsed.TotalSeconds;
        string log;
        lock (serial) log = serial.ToString();
        Assert.True(exited, $"the kernel did not finish within 15 minutes; last output:\n{Tail(log)}");
        Assert.Contains(smp == 1 ? "smp: Brought up 1 node, 1 CPU" : $"smp: Brought up 1 node, {smp} CPUs", log);
        foreach (var hpet in HpetLines) Assert.Contains(hpet, log);
        foreach (var kvm in KvmClockLines) Assert.Contains(kvm, log); // as in a KVM guest (issue 15)
        // KVM_FEATURE_PV_UNHALT: spinlock waiters halt until the holder's KVM_HC_KICK_CPU, as in a KVM guest.
        Assert.Contains(smp == 1 ? "kvm-guest: PV spinlocks disabled, single CPU" : "kvm-guest: PV spinlocks enabled", log);
        Assert.DoesNotContain("detected stalls", log); // "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks"
        Assert.DoesNotContain("soft lockup", log);
        Assert.DoesNotContain("Disabled fast string operations", log); // IA32_MISC_ENABLE.FAST_STRING, as QEMU/KVM set it
        // IA32_ARCH_CAPABILITIES says the virtual CPU has none of the speculation flaws, as KVM does on an unaffected host.
        Assert.DoesNotContain("page tables isolation: enabled", log);
        Assert.DoesNotContain("MDS: Vulnerable", log);
        // IBRS_ALL with IA32_SPEC_CTRL: enhanced IBRS instead of retpoline thunks, BHI_DIS_S instead of a clearing loop;
        // every write to those MSRs is accepted (a #GP would print "unchecked MSR access error").
        Assert.Contains("Spectre V2 : Mitigation: Enhanced / Automatic IBRS", log);
        Assert.DoesNotContain("BHI mitigation: SW BHB clearing", log);
        Assert.DoesNotContain("unchecked MSR access", log);
        if (ourInit)
        {
            Assert.Contains($"init: cpus={smp}", log);
            Assert.Contains("init: fp=3.142857", log); // double division and printf in userspace
        }
        // Without an initramfs the kernel cannot mount a root file system and panics; panic=-1 then resets.
        Assert.Equal(initrd.Length > 0 ? VmExitKind.PowerOff : VmExitKind.Reset, pc.Vm.ExitKind);
        output.WriteLine($"DynaSmp --smp {smp}: init's first line at {dynaInit?.ToString("F1") ?? "-"} s, run ended at {dynaTotal:F1} s ({pc.Vm.ExitKind})");

        // The reference peer on the same kernel and initramfs.
        if (DynaSmp.Tests.Guests.QemuRunner.SkipReason is { } skip) { output.WriteLine($"QEMU side: {skip}"); WriteLogs(smp, log, null); return; }
        string qemu = DynaSmp.Tests.Guests.QemuRunner.Find() ?? throw new Xunit.Sdk.XunitException($"{DynaSmp.Tests.Guests.QemuRunner.Binary} is required ({DynaSmp.Tests.Guests.QemuRunner.RequireVariable}=1) and not on PATH");
        string initrdFile = Path.Combine(Path.GetTempPath(), $"dynasmp-initrd-{Environment.ProcessId}.cpio");
        File.WriteAllBytes(initrdFile, initrd);
        var qlog = new StringBuilder();
        double? qemuInit = null;
        var qclock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var outcome = DynaSmp.Cli.QemuReference.Run(qemu, kernelPath, smp, CommandLine, TimeSpan.FromMinutes(10), line =>
            {
                lock (qlog)
                {
                    qlog.Append(line).Append('\n');
                    if (qemuInit == null && line.Contains("init: cpus=")) qemuInit = qclock.Elapsed.TotalSeconds;
                }
            }, initrdPath: initrd.Length > 0 ? initrdFile : null, timedLines: true);
            string q;
            lock (qlog) q = qlog.ToString();
            output.WriteLine($"QEMU TCG --smp {smp}: init's first line at {qemuInit?.ToString("F1") ?? "-"} s, run ended at {qclock.Elapsed.TotalSeconds:F1} s (status {outcome.ExitCode?.ToString() ?? "killed"})");
            if (dynaInit is double d && qemuInit is double qi) output.WriteLine($"time to init, DynaSmp / QEMU: {d / qi:F2}");
            WriteLogs(smp, log, q);
            Assert.Contains(smp == 1 ? "smp: Brought up 1 node, 1 CPU" : $"smp: Brought up 1 node, {smp} CPUs", q);
            foreach (var hpet in HpetLines) Assert.Contains(hpet, q);
            if (ourInit) Assert.Contains($"init: cpus={smp}", q);
        }
        finally { File.Delete(initrdFile); }
    }

    /// <summary>`dynasmp run` of a bzImage shows Linux KVM's paravirtual leaves and kvm-clock by default, and plain
    /// hardware with --no-kvmclock (QEMU's kvmclock=off). The second boot also runs the kernel's own decompressor in
    /// the guest (--guest-decompress), so both ways into the kernel boot a real one.</summary>
    [LinuxKernelFact]
    public void Run_command_offers_kvm_clock_to_linux_unless_told_not_to()
    {
        string? busybox = Environment.GetEnvironmentVariable(BusyboxVariable);
        if (string.IsNullOrEmpty(busybox)) { output.WriteLine($"{BusyboxVariable} is not set: this test needs an initramfs whose init powers off"); return; }
        string initrd = Path.Combine(Path.GetTempPath(), $"dynasmp-kvmclock-{Environment.ProcessId}.cpio");
        File.WriteAllBytes(initrd, BusyboxInitramfs(busybox));
        try
        {
            (string Out, string Err) Boot(params string[] extra)
            {
                var r = DynaSmp.Tests.Hostile.DynasmpProcess.Run(["run", Environment.GetEnvironmentVariable(KernelVariable)!, "--initrd", initrd,
                    "--append", CommandLine, "--mem", "256M", "--timeout", "600", .. extra], limitSeconds: 700);
                Assert.True(r.Code == 0, $"status {r.Code} (a powered-off guest exits 0)\n{Tail(r.Out)}{r.Err}");
                return (r.Out, r.Err);
            }
            string stats = Path.Combine(Path.GetTempPath(), $"dynasmp-kvmclock-{Environment.ProcessId}.json");
            var (kvm, kvmErr) = Boot("--stats", stats);
            foreach (var line in KvmClockLines) Assert.Contains(line, kvm);
            // A Linux guest's RAM is backed by transparent huge pages where the host offers them.
            using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(stats)))
                Assert.Equal(DynaSmp.Tests.Memory.GuestRamHugePageTests.HostOffersThp, doc.RootElement.GetProperty("host").GetProperty("guest_ram_huge_pages").GetBoolean());
            File.Delete(stats);
            string format = DynaSmp.Machine.Loaders.LinuxKernel.Open(File.ReadAllBytes(Environment.GetEnvironmentVariable(KernelVariable)!), hostDecompress: false).PayloadFormat;
            // Decompressed now, or taken from the kernel cache an earlier run filled: startup_64 either way.
            if (DynaSmp.Machine.Loaders.KernelPayload.CanDecompress(format)) Assert.Contains($"{format} payload", kvmErr.Split('\n').First(l => l.Contains("startup_64")));
            var (bare, bareErr) = Boot("--no-kvmclock", "--guest-decompress");
            Assert.Contains("decompressor runs in the guest: --guest-decompress", bareErr);
            Assert.DoesNotContain("Hypervisor detected", bare);
            Assert.DoesNotContain("kvm-clock", bare);
            Assert.Contains("Booting paravirtualized kernel on bare hardware", bare);
        }
        finally { File.Delete(initrd); }
    }

    /// <summary>`dynasmp boot --kernel`: a fleet of Linux VMs at once, each brought up by its own kernel and counted
    /// online from its own trace, with the init powering off each VM.</summary>
    [LinuxKernelFact]
    public void Boot_command_runs_a_fleet_of_linux_vms()
    {
        string? busybox = Environment.GetEnvironmentVariable(BusyboxVariable);
        if (string.IsNullOrEmpty(busybox)) { output.WriteLine($"{BusyboxVariable} is not set: this fleet test needs an initramfs whose init powers off"); return; }
        string dir = Path.Combine(Path.GetTempPath(), $"dynasmp-boot-linux-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            string initrd = Path.Combine(dir, "initrd.cpio"), json = Path.Combine(dir, "boot.json");
            File.WriteAllBytes(initrd, BusyboxInitramfs(busybox));
            var r = DynaSmp.Tests.Hostile.DynasmpProcess.Run(["boot", "--kernel", Environment.GetEnvironmentVariable(KernelVariable)!, "--initrd", initrd,
                "--vms", "2", "--cpus", "2", "--mem", "256M", "--timeout", "900", "--json", json], limitSeconds: 1000);
            output.WriteLine(r.Out);
            Assert.True(r.Code == 0, $"status {r.Code}\n{r.Out}{r.Err}");
            using var j = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            Assert.Equal(4, j.RootElement.GetProperty("vcpus_online").GetInt32());
            Assert.Equal(0, j.RootElement.GetProperty("failures").GetArrayLength());
            Assert.Equal(2, j.RootElement.GetProperty("bringup_samples_us").GetArrayLength()); // one AP per VM, from Linux's own INIT
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>What the kernel prints about the HPET under QEMU's pc machine, and must print here.</summary>
    static readonly string[] KvmClockLines = ["Hypervisor detected: KVM", "kvm-clock: Using msrs 4b564d01 and 4b564d00", "Booting paravirtualized kernel on KVM"];
    static readonly string[] HpetLines = ["hpet0: at MMIO 0xfed00000, IRQs 2, 8, 0", "hpet0: 3 comparators, 64-bit 100.000000 MHz counter"];

    /// <summary>Both serial logs, kept beside the test results (and their first lines in the test output).</summary>
    void WriteLogs(int smp, string dynasmp, string? qemu)
    {
        string dir = Path.Combine(Path.GetTempPath(), "dynasmp-linux-logs");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, $"dynasmp-smp{smp}.log"), dynasmp);
        if (qemu != null) File.WriteAllText(Path.Combine(dir, $"qemu-smp{smp}.log"), qemu);
        output.WriteLine($"serial logs: {dir}");
        foreach (var key in new[] { "Switched to clocksource", "hpet0:", "reference calibration", "APIC", "smpboot", "smp: ", "Freeing unused", "init:" })
        {
            foreach (var line in dynasmp.Split('\n')) if (line.Contains(key)) { output.WriteLine($"  dynasmp | {line.TrimEnd('\r')}"); break; }
            if (qemu != null) foreach (var line in qemu.Split('\n')) if (line.Contains(key)) { output.WriteLine($"  qemu    | {line.TrimEnd('\r')}"); break; }
        }
    }

    static string Tail(string log) => log.Length <= 4000 ? log : log[^4000..];
}
