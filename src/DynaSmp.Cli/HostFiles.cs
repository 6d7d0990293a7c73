using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace DynaSmp.Cli;

/// <summary>
/// Files named on the command line, checked the way a hostile or mistaken user needs: the type is looked at before
/// anything is opened (opening a FIFO blocks until a writer appears; /dev/zero never ends), reads are bounded, and
/// every output path is tried before a run starts, so a typo does not cost the whole run. One-line messages only.
/// </summary>
public static class HostFiles
{
    /// <summary>A kernel image and its initrd (empty without one) for <paramref name="mem"/> bytes of guest RAM: neither
    /// can be larger than the RAM it is loaded into. Shared by `run` and `boot --kernel`.</summary>
    public static (byte[] Kernel, byte[] Initrd) ReadKernel(string kernel, string? initrd, ulong mem)
    {
        long bound = (long)Math.Min(mem, (ulong)Array.MaxLength);
        string hint = $"--mem {mem >> 20} MiB";
        return (ReadInput(kernel, "kernel image", bound, hint), initrd == null ? [] : ReadInput(initrd, "initrd", bound, hint));
    }

    /// <summary>The first file named <paramref name="name"/> in a directory of PATH, or null: where a host tool the
    /// CLI runs (QEMU, a C compiler) lives.</summary>
    public static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>Reads a regular file of at most <paramref name="maxBytes"/> bytes (<paramref name="limitHint"/> says
    /// what sets the bound). Throws UsageException with a precise message otherwise.</summary>
    public static byte[] ReadInput(string path, string what, long maxBytes, string limitHint)
    {
        var (kind, size) = Stat(path, out int errno);
        switch (kind)
        {
            case FileKind.Missing:
                throw new UsageException(errno == Enoent || errno == Enotdir ? $"{what} {path}: no such file" : $"{what} {path}: cannot look at it ({Strerror(errno)})");
            case FileKind.Directory: throw new UsageException($"{what} {path}: is a directory, not a file");
            case FileKind.Fifo: throw new UsageException($"{what} {path}: is a FIFO (named pipe); give a regular file");
            case FileKind.CharDevice: case FileKind.BlockDevice: throw new UsageException($"{what} {path}: is a device; give a regular file");
            case FileKind.Socket: throw new UsageException($"{what} {path}: is a socket; give a regular file");
            case FileKind.Other: throw new UsageException($"{what} {path}: is not a regular file");
        }
        if (size > maxBytes)
            throw new UsageException($"{what} {path}: {Mib(size)} is too large for {limitHint} (at most {Mib(maxBytes)})");
        // O_NONBLOCK: if the path was swapped for a FIFO since the check, open() must not wait for a writer.
        int fd = Open(path, ORdonly | ONonblock | OCloexec);
        if (fd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new UsageException(e is Eacces or Eperm ? $"{what} {path}: permission denied (not readable)" : $"{what} {path}: cannot open it ({Strerror(e)})");
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        var (kind2, size2) = FStat(fd);
        if (kind2 != FileKind.Regular) throw new UsageException($"{what} {path}: is not a regular file");
        if (size2 > maxBytes) throw new UsageException($"{what} {path}: {Mib(size2)} is too large for {limitHint} (at most {Mib(maxBytes)})");
        var data = new byte[size2];
        int got = 0;
        try
        {
            while (got < data.Length)
            {
                int n = RandomAccess.Read(handle, data.AsSpan(got), got);
                if (n == 0) break;
                got += n;
            }
        }
        catch (IOException e) { throw new UsageException($"{what} {path}: read error ({e.Message})"); }
        return got == data.Length ? data : data[..got];
    }

    /// <summary>Checks that <paramref name="path"/> (given with <paramref name="flag"/>) can be written, before the run:
    /// not a directory, its directory exists, and it can be opened for writing. Creates nothing that stays.</summary>
    public static void CheckOutput(string? path, string flag)
    {
        if (path == null) return;
        if (path.Length == 0) throw new UsageException($"{flag}: empty file name");
        var (kind, _) = Stat(path, out int errno);
        if (kind == FileKind.Directory) throw new UsageException($"{flag} {path}: is a directory; give a file name");
        if (kind == FileKind.Missing)
        {
            if (errno == Enotdir) throw new UsageException($"{flag} {path}: a component of the path is not a directory");
            string dir = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
            var (dk, _) = Stat(dir, out _);
            if (dk == FileKind.Missing) throw new UsageException($"{flag} {path}: directory {dir} does not exist");
            if (dk != FileKind.Directory) throw new UsageException($"{flag} {path}: {dir} is not a directory");
            int fd = Open(path, OWronly | OCreat | OExcl | OCloexec, 0x1B6);
            if (fd < 0) throw new UsageException($"{flag} {path}: cannot create it ({Strerror(Marshal.GetLastPInvokeError())})");
            Close(fd);
            Unlink(path);
            return;
        }
        // Existing: open without truncating; a FIFO with no reader fails at once (ENXIO) instead of blocking.
        int f = Open(path, OWronly | ONonblock | OCloexec);
        if (f < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            throw new UsageException(e switch
            {
                Eacces or Eperm or Erofs => $"{flag} {path}: not writable ({Strerror(e)})",
                Enxio => $"{flag} {path}: is a FIFO with no reader",
                _ => $"{flag} {path}: cannot open it for writing ({Strerror(e)})",
            });
        }
        Close(f);
    }

    /// <summary>Writes an output file checked by <see cref="CheckOutput"/>; a late failure (disk full) is one line.</summary>
    public static void WriteOutput(string path, string flag, Action<Stream> write)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read);
            write(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{flag} {path}: writing failed ({e.Message})");
        }
    }

    static string Mib(long bytes) => bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):F1} MiB" : $"{bytes:N0} bytes";

    // ---- libc ------------------------------------------------------------------------------------

    enum FileKind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Other }

    const int ORdonly = 0, OWronly = 1, OCreat = 0x40, OExcl = 0x80, ONonblock = 0x800, OCloexec = 0x80000;
    const int Eperm = 1, Enoent = 2, Enxio = 6, Eacces = 13, Enotdir = 20, Erofs = 30;

    static FileKind KindOf(uint mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharDevice,
        0x6000 => FileKind.BlockDevice,
        0xC000 => FileKind.Socket,
        _ => FileKind.Other,
    };

    // struct stat on x86-64 Linux: 144 bytes, st_mode at 24, st_size at 48.
    const int StatSize = 144, ModeOffset = 24, SizeOffset = 48;

    static unsafe (FileKind, long) Stat(string path, out int errno)
    {
        byte* buf = stackalloc byte[StatSize];
        errno = 0;
        if (StatPath(path, buf) != 0) { errno = Marshal.GetLastPInvokeError(); return (FileKind.Missing, 0); }
        return (KindOf(*(uint*)(buf + ModeOffset)), *(long*)(buf + SizeOffset));
    }

    static unsafe (FileKind, long) FStat(int fd)
    {
        byte* buf = stackalloc byte[StatSize];
        if (FStatFd(fd, buf) != 0) return (FileKind.Other, 0);
        return (KindOf(*(uint*)(buf + ModeOffset)), *(long*)(buf + SizeOffset));
    }

    static string Strerror(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    static extern unsafe int StatPath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf);

    [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
    static extern unsafe int FStatFd(int fd, byte* buf);

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode = 0);

    [DllImport("libc", EntryPoint = "close")]
    static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "unlink")]
    static extern int Unlink([MarshalAs(UnmanagedType.LPUTF8Str)] string path);
}
