using DynaSmp.Cli;
using DynaSmp.Cli.Commands;
using DynaSmp.Machine.Loaders;

// dynasmp: boot many SMP guests, trace their IPIs, run multiboot kernels.
const string Help = """
    dynasmp: an x86 SMP emulator (JIT-translating CPU, KVM-exact vCPU lifecycle)

      dynasmp boot  [--vms N] [--cpus M] [--mem SIZE] [--ipi-delays none|linux] [--json FILE] [--timeout S]
                    boot the built-in SMP guest (Linux-style INIT/SIPI bring-up) in N VMs at once
      dynasmp trace [--cpus M] [--chrome FILE]
                    boot one VM and print its IPI timeline with the KVM path of every event
      dynasmp run   KERNEL [--smp M] [--mem SIZE] [--timeout S] [--cmdline TEXT]
                    boot a multiboot kernel; serial on stdout; exit status as QEMU's isa-debug-exit
      dynasmp guest export FILE
                    write the built-in guest image (boots under qemu-system-x86_64 -kernel FILE)
      dynasmp demo  run the single-CPU sieve demo and print its guest MIPS
      dynasmp bench [--filter NAME] [--mode 32|64|both] [--runs N] [--no-qemu] [--json FILE]
                    time the perf/workloads guests under DynaSmp and QEMU TCG; checksums and speed ratios
    """;

try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help") { Console.WriteLine(Help); return args.Length == 0 ? 2 : 0; }
    var rest = args[1..];
    return args[0] switch
    {
        "boot" => BootCommand.Run(rest),
        "trace" => TraceCommand.Run(rest),
        "run" => RunCommand.Run(rest),
        "guest" => GuestCommand.Run(rest),
        "demo" => DemoCommand.Run(rest),
        "bench" => BenchCommand.Run(rest),
        _ => throw new UsageException($"unknown command '{args[0]}' (try: dynasmp --help)"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"dynasmp: {e.Message}");
    return 2;
}
catch (MultibootImageException e)
{
    Console.Error.WriteLine($"dynasmp: not a bootable image: {e.Message}");
    return 2;
}
catch (IOException e)
{
    Console.Error.WriteLine($"dynasmp: {e.Message}");
    return 2;
}
catch (UnauthorizedAccessException e)
{
    Console.Error.WriteLine($"dynasmp: {e.Message}");
    return 2;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"dynasmp: {e.Message}");
    return 2;
}
