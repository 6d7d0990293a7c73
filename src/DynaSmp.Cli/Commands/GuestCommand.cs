using System.CommandLine;
using DynaSmp.Machine.Guests;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp guest export FILE`: the built-in guest as a multiboot ELF32 file, for QEMU.</summary>
static class GuestCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "where to write the image" };
        var delays = CliOptions.IpiDelays();
        var export = new Command("export", "write the built-in guest image (boots under qemu-system-x86_64 -kernel FILE)") { file, delays };
        export.SetAction(p => Export(p.GetValue(file)!, p.GetValue(delays).Value));
        return new Command("guest", "the built-in guest") { export };
    }

    static int Export(string path, IpiDelays delays)
    {
        var image = BuiltinGuest.Build(new BuiltinGuestOptions { IpiDelays = delays });
        HostFiles.CheckOutput(path, "FILE");
        HostFiles.WriteOutput(path, "FILE", s => s.Write(image));
        Console.WriteLine($"wrote {path} ({image.Length:N0} bytes): qemu-system-x86_64 -kernel {path} -smp 4 -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04");
        return 0;
    }
}
