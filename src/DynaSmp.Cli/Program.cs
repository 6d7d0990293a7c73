using System.CommandLine;
using DynaSmp.Cli;
using DynaSmp.Cli.Commands;
using DynaSmp.Machine.Loaders;

// dynasmp: boot many SMP guests, trace their IPIs, run multiboot kernels.
// Real kernels and workloads compile thousands of blocks and start again with runtime settings for that (RuntimeSettings);
// the built-in guest's commands compile a few dozen, and a second runtime start-up would cost them more than it saves.
if (args.Length > 0 && (args[0] is "run" or "bench" || (args[0] == "boot" && Array.Exists(args, a => a.StartsWith("--kernel", StringComparison.Ordinal)))))
    RuntimeSettings.StartAgainIfNeeded();
try
{
    var root = new RootCommand("dynasmp: an x86 SMP emulator (JIT-translating CPU, KVM-exact vCPU lifecycle)")
    {
        BootCommand.Create(), TraceCommand.Create(), RunCommand.Create(), GuestCommand.Create(), DemoCommand.Create(),
        BenchCommand.Create(), FuzzCommand.Create(), StormCommand.Create(), MergeCommand.Create(), CompareCommand.Create(), CompletionCommand.Create(),
    };
    // No command: the help, as status 2 (a script that forgot the command did not succeed).
    if (args.Length == 0) { root.Parse(["--help"]).Invoke(); return (int)ExitStatus.BadInput; }
    var parsed = root.Parse(args);
    if (parsed.Errors.Count > 0)
    {
        // One line: the first error names the problem; the rest are usually its echoes.
        var path = new List<string>();
        for (var r = parsed.CommandResult; r != null && r.Command is not RootCommand; r = r.Parent as System.CommandLine.Parsing.CommandResult)
            path.Insert(0, r.Command.Name);
        return Fail($"{parsed.Errors[0].Message} (see: {string.Join(' ', path.Prepend("dynasmp"))} --help)", ExitStatus.BadInput);
    }
    return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
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
