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
      dynasmp run   KERNEL [--smp M] [--mem SIZE] [--timeout S] [--cmdline TEXT] [--json FILE]
                    boot a multiboot kernel; serial on stdout; exit status as QEMU's isa-debug-exit
                    (odd), or an even status: 2 bad input, 4 triple fault, 6 unsupported, 8 host
                    resources, 70 internal error, 124 timeout
      dynasmp guest export FILE
                    write the built-in guest image (boots under qemu-system-x86_64 -kernel FILE)
      dynasmp demo  run the single-CPU sieve demo and print its guest MIPS
      dynasmp bench [--filter NAME] [--mode 32|64|both] [--runs N] [--no-qemu] [--json FILE]
                    time the perf/workloads guests under DynaSmp and QEMU TCG; checksums and speed ratios
      dynasmp fuzz  [--seeds N] [--start SEED] [--timeout S] [--keep DIR]
                    run hostile generated guests; fails (status 70) on any host error or hang
    """;

try
{
    if (args.Length == 0 || args[0] is "-h" or "--help" or "help") { Console.WriteLine(Help); return args.Length == 0 ? (int)ExitStatus.BadInput : 0; }
    var rest = args[1..];
    return args[0] switch
    {
        "boot" => BootCommand.Run(rest),
        "trace" => TraceCommand.Run(rest),
        "run" => RunCommand.Run(rest),
        "guest" => GuestCommand.Run(rest),
        "demo" => DemoCommand.Run(rest),
        "bench" => BenchCommand.Run(rest),
        "fuzz" => FuzzCommand.Run(rest),
        _ => throw new UsageException($"unknown command '{args[0]}' (try: dynasmp --help)"),
    };
}
catch (UsageException e) { return Fail(e.Message, ExitStatus.BadInput); }
catch (MultibootImageException e) { return Fail($"not a bootable image: {e.Message}", ExitStatus.BadInput); }
catch (LinuxImageException e) { return Fail($"not a bootable Linux image: {e.Message}", ExitStatus.BadInput); }
catch (HostResourcesException e) { return Fail(e.Message, ExitStatus.HostResources); }
catch (TimeoutExpiredException e) { return Fail(e.Message, ExitStatus.Timeout); }
catch (IOException e) { return Fail(e.Message, ExitStatus.BadInput); }
catch (UnauthorizedAccessException e) { return Fail(e.Message, ExitStatus.BadInput); }
catch (ArgumentException e) { return Fail(e.Message, ExitStatus.BadInput); }
catch (Exception e)
{
    // A DynaSmp bug: one line for the user, the stack trace only when asked for.
    if (Environment.GetEnvironmentVariable("DYNASMP_DEBUG") == "1") Console.Error.WriteLine(e);
    return Fail($"internal error (a DynaSmp bug, please report it): {e.GetType().Name}: {e.Message}", ExitStatus.InternalError);
}
finally
{
    NativeBackstop.Disarm();
}

static int Fail(string message, ExitStatus status)
{
    Console.Error.WriteLine($"dynasmp: {message}");
    return (int)status;
}
