using DynaSmp.Machine.Guests;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp guest export FILE`: the built-in guest as a multiboot ELF32 file, for QEMU.</summary>
static class GuestCommand
{
    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--ipi-delays" });
        if (a.Positionals.Count != 2 || a.Positionals[0] != "export") throw new UsageException("usage: dynasmp guest export FILE [--ipi-delays none|linux]");
        var delays = a.Choice("--ipi-delays", IpiDelays.None, ("none", IpiDelays.None), ("linux", IpiDelays.Linux));
        var image = BuiltinGuest.Build(new BuiltinGuestOptions { IpiDelays = delays });
        File.WriteAllBytes(a.Positionals[1], image);
        Console.WriteLine($"wrote {a.Positionals[1]} ({image.Length:N0} bytes): qemu-system-x86_64 -kernel {a.Positionals[1]} -smp 4 -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04");
        return 0;
    }
}
