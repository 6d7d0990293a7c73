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
                   "busybox, or {LinuxKernelTests.InitrdVariable} to an initramfs whose init powers off) to boot a real kernel; .ci/fetch-linux fetches both";
        else if (!File.Exists(path))
            Skip = $"{LinuxKernelTests.KernelVariable}={path} does not exist";
    }
}

/// <summary>A real distribution kernel under DynaSmp, 2 vCPUs: Linux brings up both CPUs with its own INIT/SIPI,
/// and with an initramfs whose init powers off, the run ends through ACPI S5 with status 0.</summary>
public class LinuxKernelTests
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

    [LinuxKernelFact]
    public void Real_kernel_brings_up_every_cpu_and_powers_off()
    {
        var kernel = File.ReadAllBytes(Environment.GetEnvironmentVariable(KernelVariable)!);
        string? initrdPath = Environment.GetEnvironmentVariable(InitrdVariable), busybox = Environment.GetEnvironmentVariable(BusyboxVariable);
        byte[] initrd = !string.IsNullOrEmpty(initrdPath) ? File.ReadAllBytes(initrdPath)
            : !string.IsNullOrEmpty(busybox) ? BusyboxInitramfs(busybox) : [];
        var serial = new StringBuilder();
        using var pc = new Pc(new VmConfig { Vcpus = 2, MemoryBytes = 256UL << 20, Trace = false }, b => { lock (serial) serial.Append((char)b); });
        pc.LoadLinux(kernel, initrd, "console=ttyS0 earlyprintk=serial panic=-1");
        pc.Vm.Start();
        bool exited = pc.Vm.WaitForExit(TimeSpan.FromMinutes(10));
        pc.Vm.Join();
        string log;
        lock (serial) log = serial.ToString();
        Assert.True(exited, $"the kernel did not finish within 10 minutes; last output:\n{Tail(log)}");
        Assert.Contains("smp: Brought up 1 node, 2 CPUs", log);
        if (string.IsNullOrEmpty(initrdPath) && !string.IsNullOrEmpty(busybox))
        {
            Assert.Contains("init: cpus=2", log);
            Assert.Contains("init: fp=3.142857", log); // double division and printf in userspace
        }
        // Without an initramfs the kernel cannot mount a root file system and panics; panic=-1 then resets.
        Assert.Equal(initrd.Length > 0 ? VmExitKind.PowerOff : VmExitKind.Reset, pc.Vm.ExitKind);
    }

    static string Tail(string log) => log.Length <= 4000 ? log : log[^4000..];
}
