using DynaSmp.Machine;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp run KERNEL`: a multiboot kernel with its serial output on stdout. The exit status is what
/// QEMU gives for the same isa-debug-exit write ((value &lt;&lt; 1) | 1), so QEMU scripts work unchanged.</summary>
static class RunCommand
{
    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--smp", "--mem", "--timeout", "--cmdline" });
        a.ExpectPositionals(1, "dynasmp run KERNEL [--smp M] [--mem SIZE] [--timeout S] [--cmdline TEXT]");
        int smp = a.Int("--smp", 1, 1, 1024);
        ulong mem = a.Size("--mem", 128UL << 20);
        double timeout = a.Seconds("--timeout", 60);
        string cmdline = a.String("--cmdline") ?? "";
        string path = a.Positionals[0];
        if (!File.Exists(path)) throw new UsageException($"no such kernel image: {path}");
        var image = File.ReadAllBytes(path);

        var stdout = Console.OpenStandardOutput();
        using var pc = new Pc(new VmConfig { Vcpus = smp, MemoryBytes = mem, X2Apic = smp > 255, Trace = false },
            b => { stdout.WriteByte(b); if (b == '\n') stdout.Flush(); });
        pc.LoadMultiboot(image, cmdline);
        pc.Vm.Start();
        bool ended = pc.Vm.WaitForExit(TimeSpan.FromSeconds(timeout));
        if (!ended) pc.Vm.Stop(VmExitKind.Stopped, $"timeout after {timeout} s");
        pc.Vm.Join();
        stdout.Flush();
        switch (pc.Vm.ExitKind)
        {
            case VmExitKind.DebugExit:
                return pc.Vm.ExitStatus!.Value & 0xFF;
            case VmExitKind.TripleFault:
                Console.Error.WriteLine($"dynasmp: the guest triple-faulted (shutdown): {pc.Vm.ExitMessage}");
                return 1;
            default:
                Console.Error.WriteLine($"dynasmp: {pc.Vm.ExitKind}: {pc.Vm.ExitMessage}");
                return ended ? 1 : 124;
        }
    }
}
