using System.Security.Cryptography;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// Decompressed kernels kept on disk between runs, so booting the same bzImage again (a fleet tomorrow, a regression
/// run, the next debug boot) skips the second of host decompression too. An entry is named by the SHA-256 of the
/// compressed payload and ends with the SHA-256 of its own content, checked on every load: a truncated or altered
/// entry is not used (it is decompressed and written again), so the cache can never change what the guest runs.
/// Writes go to a temporary file renamed into place; the oldest entries beyond <see cref="MaxEntries"/> are removed.
/// Nothing here is fatal: an unwritable or missing directory only means no cache.
/// </summary>
public sealed class KernelCache(string directory)
{
    /// <summary>Entries kept (a Debian vmlinux is 58 MiB).</summary>
    public const int MaxEntries = 6;

    /// <summary>DYNASMP_KERNEL_CACHE (a directory, or 0 for none), else $XDG_CACHE_HOME/dynasmp/vmlinux, else
    /// ~/.cache/dynasmp/vmlinux; null when caching is off or there is no home.</summary>
    public static KernelCache? Default()
    {
        string? set = Environment.GetEnvironmentVariable("DYNASMP_KERNEL_CACHE");
        if (set == "0") return null;
        if (!string.IsNullOrEmpty(set)) return new KernelCache(set);
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string? root = !string.IsNullOrEmpty(xdg) ? xdg : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache") : null;
        return root == null ? null : new KernelCache(Path.Combine(root, "dynasmp", "vmlinux"));
    }

    public string Directory { get; } = directory;

    /// <summary>The content of the entry for <paramref name="payload"/> if it is there and intact, else null.</summary>
    public byte[]? TryLoad(ReadOnlySpan<byte> payload, int expectedLength)
    {
        try
        {
            string path = PathFor(payload);
            var info = new FileInfo(path);
            if (!info.Exists || info.Length != expectedLength + SHA256.HashSizeInBytes) return null;
            // PERF: one array of the content's size, read in place: each fresh 58 MiB array costs about 0.2 s of page
            // faults on this host, so ReadAllBytes and a slice took 0.53 s where this takes 0.3 s.
            var content = GC.AllocateUninitializedArray<byte>(expectedLength);
            Span<byte> stored = stackalloc byte[SHA256.HashSizeInBytes];
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
            {
                f.ReadExactly(content);
                f.ReadExactly(stored);
            }
            if (!SHA256.HashData(content).AsSpan().SequenceEqual(stored)) return null;
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // recently used: evicted last
            return content;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Stores <paramref name="content"/> for <paramref name="payload"/>; false (and nothing half-written) if it cannot.</summary>
    public bool TryStore(ReadOnlySpan<byte> payload, byte[] content)
    {
        string? temp = null;
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            string path = PathFor(payload);
            temp = $"{path}.{Environment.ProcessId}.tmp";
            using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                f.Write(content);
                f.Write(SHA256.HashData(content));
            }
            File.Move(temp, path, overwrite: true);
            temp = null;
            Evict();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        finally
        {
            if (temp != null) try { File.Delete(temp); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    internal string PathFor(ReadOnlySpan<byte> payload) => Path.Combine(Directory, Convert.ToHexStringLower(SHA256.HashData(payload)) + ".vmlinux");

    void Evict()
    {
        var entries = new DirectoryInfo(Directory).GetFiles("*.vmlinux");
        if (entries.Length <= MaxEntries) return;
        Array.Sort(entries, (a, b) => b.LastWriteTimeUtc.CompareTo(a.LastWriteTimeUtc));
        for (int k = MaxEntries; k < entries.Length; k++) entries[k].Delete();
    }
}
