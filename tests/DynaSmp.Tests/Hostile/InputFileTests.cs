using DynaSmp.Cli.Fuzz;
using static DynaSmp.Tests.Hostile.DynasmpProcess;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 1 of issue 12: only regular files are read, bounded by guest RAM, with one precise line for each
/// kind of bad input; output paths are checked before the run starts (it would otherwise be lost at the end).</summary>
[Collection(DynasmpProcess.Collection)]
public class InputFileTests
{
    static void AssertBadInput(Result r, string expected)
    {
        Assert.True(r.Code == 2, $"status {r.Code}: {r.Err}{r.Out}");
        Assert.StartsWith("dynasmp: ", r.Err);
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("   at ", r.Err + r.Out);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Boot_linux_flags_need_a_bzimage()
    {
        AssertBadInput(Run("boot", "--initrd", "/etc/hostname"), "--initrd needs --kernel");
        AssertBadInput(Run("boot", "--append", "quiet"), "--append needs --kernel");
        AssertBadInput(Run("boot", "--no-kvmclock"), "--no-kvmclock needs --kernel");
        using var dir = new TempDir();
        string elf = dir.File("k.elf");
        File.WriteAllBytes(elf, DynaSmp.Machine.Guests.BuiltinGuest.Build(new DynaSmp.Machine.Guests.BuiltinGuestOptions()));
        AssertBadInput(Run("boot", "--kernel", elf), "not a Linux bzImage");
        AssertBadInput(Run("boot", "--kernel", Path.GetTempPath()), "is a directory, not a file");
    }

    [Fact]
    public void A_directory_is_named_as_one() => AssertBadInput(Run("run", Path.GetTempPath()), "is a directory, not a file");

    [Fact]
    public void A_device_is_refused_without_reading_it() // /dev/zero used to grow 200 MB/s until "Out of memory"
    {
        var r = Run(["run", "/dev/zero", "--timeout", "5"], limitSeconds: 20);
        AssertBadInput(r, "is a device");
        Assert.True(r.Seconds < 10, $"{r.Seconds:F1} s");
    }

    [Fact]
    public void A_FIFO_is_refused_without_opening_it()
    {
        using var d = new TempDir();
        string fifo = d.File("fifo");
        MkFifo(fifo);
        AssertBadInput(Run(["run", fifo, "--timeout", "5"], limitSeconds: 20), "is a FIFO");
    }

    [Fact]
    public void A_missing_file_is_named_as_missing() => AssertBadInput(Run("run", "/definitely/not/here.elf"), "no such file");

    [Fact]
    public void An_image_larger_than_guest_RAM_is_too_large_for_mem()
    {
        using var d = new TempDir();
        string big = d.File("big.elf");
        using (var f = File.Create(big)) f.SetLength(40L << 20); // sparse
        AssertBadInput(Run("run", big, "--mem", "16M"), "is too large for --mem 16 MiB");
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void An_unreadable_file_is_named_as_unreadable()
    {
        using var d = new TempDir();
        string f = d.Write("secret.elf", GuestImages.DebugExit(0));
        File.SetUnixFileMode(f, UnixFileMode.None);
        // Root reads any file, so as root the command runs as nobody (the directory must then be searchable by others).
        string[]? asNobody = null;
        if (geteuid() == 0)
        {
            File.SetUnixFileMode(d.Path, (UnixFileMode)0x1ED); // 0755
            Assert.True(File.Exists("/usr/bin/setpriv"), "running as root: this test needs setpriv (util-linux) to drop privileges");
            asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
        }
        AssertBadInput(Run(["run", f], new Dictionary<string, string> { ["HOME"] = Path.GetTempPath() }, launcher: asNobody), "permission denied");
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern uint geteuid();

    static void MkFifo(string path) => Assert.Equal(0, mkfifo(path, 0x1B6));

    [System.Runtime.InteropServices.DllImport("libc")]
    static extern int mkfifo([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, uint mode);

    [Theory]
    [InlineData("dir")]
    [InlineData("missing-parent")]
    [InlineData("file-as-parent")]
    [InlineData("fifo")]
    public void Output_paths_are_checked_before_the_run(string kind)
    {
        using var d = new TempDir();
        string image = d.Write("guest.elf", GuestImages.SpinAll());
        string json = kind switch
        {
            "dir" => d.Path,
            "missing-parent" => d.File("no/such/dir/out.json"),
            "file-as-parent" => Path.Combine(image, "out.json"),
            _ => d.File("fifo"),
        };
        if (kind == "fifo") MkFifo(json);
        // The guest spins for 30 s: a check made after the run would blow the 15 s limit.
        var r = Run(["run", image, "--timeout", "30", "--json", json], limitSeconds: 15);
        AssertBadInput(r, kind switch
        {
            "dir" => "is a directory",
            "missing-parent" => "does not exist",
            "file-as-parent" => "is not a directory",
            _ => "is a FIFO with no reader",
        });
        Assert.True(r.Seconds < 10);
    }

    [Fact]
    public void Boot_and_trace_check_their_outputs_first()
    {
        AssertBadInput(Run("boot", "--json", "/nonexistent/x.json"), "directory /nonexistent does not exist");
        AssertBadInput(Run("trace", "--chrome", Path.GetTempPath()), "is a directory");
    }
}
