using System.Security.Cryptography;
using DynaSmp.Jit.Memory;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// Decompressed kernels kept on disk between runs, so booting the same bzImage again (a fleet tomorrow, a regression
/// run, the next debug boot) skips the second of host decompression too. An entry is named by the SHA-256 of the
/// compressed payload and ends with the XXH128 checksum of its own content, checked on every load: a truncated or
/// altered entry is not used (it is decompressed and written again), so the cache can never change what the guest runs.
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

    /// <summary>The content of the entry for <paramref name="payload"/> if it is there and intact, else null. The content is
    /// the file mapped read-only, valid for the life of the process.</summary>
    /// <remarks>PERF: a fresh 58 MiB array cost about 0.2 s of page faults on this host (a zeroed page at each 4 KiB), most
    /// of a 0.32 s load; the file's pages are already in the page cache, and a mapping faults them in many at a time.
    /// Entries are replaced by rename and evicted by unlink, so a mapped entry never changes under the guest.</remarks>
    public ReadOnlyMemory<byte>? TryLoad(ReadOnlySpan<byte> payload, int expectedLength)
    {
        try
        {
            string path = PathFor(payload);
            var info = new FileInfo(path);
            if (!info.Exists || info.Length != expectedLength + ChecksumSize) return null;
            var mapped = MappedFile.Open(path, expectedLength + ChecksumSize);
            var whole = mapped.Memory;
            var content = whole[..expectedLength];
            if (!Checksum(content.Span).AsSpan().SequenceEqual(whole.Span[expectedLength..])) { ((IDisposable)mapped).Dispose(); return null; }
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow); // recently used: evicted last
            return content;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>A file mapped read-only as one block of memory, kept mapped for the life of the process (the kernel's
    /// segments are copied out of it into each VM that boots it).</summary>
    sealed unsafe class MappedFile : System.Buffers.MemoryManager<byte>
    {
        /// <summary>The file itself, for mapping its pages into guest RAM (<see cref="GuestRam.TryMapFile"/>).</summary>
        public Microsoft.Win32.SafeHandles.SafeFileHandle Handle { get; }
        readonly System.IO.MemoryMappedFiles.MemoryMappedFile _file;
        readonly System.IO.MemoryMappedFiles.MemoryMappedViewAccessor _view;
        readonly byte* _start;
        readonly int _length;

        MappedFile(System.IO.MemoryMappedFiles.MemoryMappedFile file, System.IO.MemoryMappedFiles.MemoryMappedViewAccessor view, int length,
            Microsoft.Win32.SafeHandles.SafeFileHandle handle)
        {
            _file = file; _view = view; _length = length; Handle = handle;
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _start = p + view.PointerOffset;
        }

        public static MappedFile Open(string path, int length)
        {
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            try
            {
                var file = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(handle, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read,
                    HandleInheritability.None, leaveOpen: true);
                try { return new MappedFile(file, file.CreateViewAccessor(0, length, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read), length, handle); }
                catch { file.Dispose(); throw; }
            }
            catch { handle.Dispose(); throw; }
        }

        public override Span<byte> GetSpan() => new(_start, _length);
        public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(_start + elementIndex);
        public override void Unpin() { }

        protected override void Dispose(bool disposing)
        {
            if (!disposing) return;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _file.Dispose();
            Handle.Dispose();
        }
    }

    /// <summary>The cache file and offset <paramref name="data"/> was loaded from, if it is (part of) a loaded entry.</summary>
    internal static bool TryFileOf(ReadOnlyMemory<byte> data, out System.Runtime.InteropServices.SafeHandle? file, out long offset)
    {
        file = null; offset = 0;
        if (!System.Runtime.InteropServices.MemoryMarshal.TryGetMemoryManager(data, out MappedFile? mapped, out int start, out _)) return false;
        file = mapped.Handle;
        offset = start;
        return true;
    }

    /// <summary>Writes a kernel segment's bytes into guest RAM: the whole pages of a cache entry's content are mapped from
    /// the file copy-on-write (<see cref="GuestRam.TryMapFile"/>), the partial pages at either end copied; anything else
    /// is copied.</summary>
    internal static void WriteSegment(GuestRam ram, ulong physical, ReadOnlyMemory<byte> data)
    {
        const ulong Page = GuestRam.PageSize, Mask = GuestRam.PageMask;
        if (data.Length >= 4 * (int)Page && TryFileOf(data, out var file, out long offset) && ((physical ^ (ulong)offset) & Mask) == 0)
        {
            ulong head = (Page - (physical & Mask)) & Mask;
            ulong body = ((ulong)data.Length - head) & ~Mask;
            if (ram.TryMapFile(physical + head, file!, offset + (long)head, body))
            {
                ram.Write(physical, data.Span[..(int)head]);
                ram.Write(physical + head + body, data.Span[(int)(head + body)..]);
                return;
            }
        }
        ram.Write(physical, data.Span);
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
                f.Write(Checksum(content));
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

    /// <summary>The trailer of an entry: XXH128 of its content. It guards against a cut-short or damaged file, which is all
    /// a trailer anyone can rewrite can do, SHA-256 included.</summary>
    /// <remarks>PERF: SHA-256 of Debian's 58 MiB vmlinux took about 0.1 s on this host (OpenSSL at about 600 MB/s); XXH128
    /// runs at several GB/s. An entry written with the old SHA-256 trailer is 16 bytes longer: its length is refused and the
    /// kernel is decompressed and stored again under the same name.</remarks>
    internal static byte[] Checksum(ReadOnlySpan<byte> content) => System.IO.Hashing.XxHash128.Hash(content);

    internal const int ChecksumSize = 16;

    internal string PathFor(ReadOnlySpan<byte> payload) => Path.Combine(Directory, Convert.ToHexStringLower(SHA256.HashData(payload)) + ".vmlinux");

    void Evict()
    {
        var entries = new DirectoryInfo(Directory).GetFiles("*.vmlinux");
        if (entries.Length <= MaxEntries) return;
        Array.Sort(entries, (a, b) => b.LastWriteTimeUtc.CompareTo(a.LastWriteTimeUtc));
        for (int k = MaxEntries; k < entries.Length; k++) entries[k].Delete();
    }
}
