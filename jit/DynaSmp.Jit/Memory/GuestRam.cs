using System.Runtime.InteropServices;

namespace DynaSmp.Jit.Memory;

/// <summary>
/// Guest-physical RAM at [0, Size): one anonymous host mapping reserved without commitment
/// (MAP_NORESERVE), so pages cost host memory only once the guest touches them.
/// Also tracks which guest pages hold translated code, so writes there invalidate translations.
/// </summary>
public sealed unsafe partial class GuestRam : IDisposable
{
    public const int PageShift = 12;
    public const ulong PageSize = 1UL << PageShift, PageMask = PageSize - 1;

    public byte* Base { get; private set; }
    public ulong Size { get; }
    /// <summary>The host accepted the advice to back this RAM with transparent huge pages, and its policy allows them.</summary>
    public bool HugePages { get; }
    /// <summary>One byte per page: non-zero while some translation was decoded from that page.</summary>
    readonly byte[] _codePages;

    /// <param name="hugePages">Back the RAM with transparent huge pages where the host allows them (madvise
    /// MADV_HUGEPAGE on a 2 MiB-aligned mapping, as QEMU does for guest RAM). For guests that touch most of their RAM, such
    /// as Linux kernels: a 2 MiB fault instead of 512 small ones, and fewer host TLB misses on every guest access. A guest
    /// that touches a few scattered pages then holds 2 MiB for each (the built-in guest's fleets: 102 -> 352 MiB for 64
    /// VMs), so it is off by default.</param>
    /// <remarks>PERF: Debian 12 <c>--smp 4</c>, time to the init's first line, two sets of 6 rounds in turns: 5.47 -> 5.19 s
    /// and 4.49 -> 4.39 s (medians; minima 5.29 -> 4.90 and 4.35 -> 4.19 s).</remarks>
    public GuestRam(ulong size, bool hugePages = false)
    {
        if (size == 0 || (size & PageMask) != 0) throw new ArgumentException("RAM size must be a non-zero multiple of 4 KiB", nameof(size));
        Size = size;
        if (OperatingSystem.IsLinux())
        {
            if (hugePages) { Base = ReserveHugeAligned(size, out bool advised); HugePages = advised; }
            else Base = Reserve(size, size);
        }
        else
        {
            Base = (byte*)NativeMemory.AllocZeroed((nuint)size);
        }
        _codePages = new byte[size >> PageShift];
    }

    const ulong HugePageSize = 2UL << 20;
    const int MadvHugepage = 14;

    /// <param name="ramSize">The guest's RAM size, for the message (the huge-page path reserves 2 MiB more).</param>
    static byte* Reserve(ulong length, ulong ramSize)
    {
        void* p = Mmap(null, (nuint)length, ProtRw, MapPrivate | MapAnonymous | MapNoreserve, -1, 0);
        if (p == (void*)-1) throw new OutOfMemoryException($"cannot reserve {ramSize >> 20} MiB of guest RAM");
        return (byte*)p;
    }

    /// <summary>Reserves 2 MiB more than asked, keeps the 2 MiB-aligned part (a huge page can only back an aligned 2 MiB of
    /// the mapping) and asks for huge pages there. The advice is best effort: without it the RAM is ordinary pages.</summary>
    static byte* ReserveHugeAligned(ulong size, out bool advised)
    {
        byte* raw = Reserve(size + HugePageSize, size);
        byte* aligned = (byte*)(((ulong)raw + HugePageSize - 1) & ~(HugePageSize - 1));
        if (aligned > raw) Munmap(raw, (nuint)(aligned - raw));
        Munmap(aligned + size, (nuint)(raw + HugePageSize - aligned)); // the slack after it: 4 KiB to 2 MiB, never none
        // EINVAL on a host kernel without THP; accepted but never acted on when the host's policy is "never".
        advised = Madvise(aligned, (nuint)size, MadvHugepage) == 0 && !HostPolicyIsNever();
        return aligned;
    }

    static bool HostPolicyIsNever()
    {
        try { return File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[never]"); }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    public bool Contains(ulong physical, int size) => physical < Size && Size - physical >= (ulong)size;

    public Span<byte> Span(ulong physical, int length)
    {
        if (!Contains(physical, length)) throw new ArgumentOutOfRangeException(nameof(physical), $"0x{physical:x}+{length} is outside guest RAM");
        return new Span<byte>(Base + physical, length);
    }

    public void Write(ulong physical, ReadOnlySpan<byte> data) => data.CopyTo(Span(physical, data.Length));

    /// <summary>Makes guest-physical [<paramref name="physical"/>, +<paramref name="length"/>) a private copy-on-write
    /// mapping of <paramref name="file"/> from <paramref name="offset"/>: the guest reads the file's pages from the host's
    /// page cache and its writes stay its own. All three must be page-aligned; Linux only. False (RAM unchanged) when
    /// it cannot: the caller copies instead.</summary>
    /// <remarks>PERF: copying Debian's 58 MiB vmlinux into each VM's RAM cost about 0.15 s of copying and page faults
    /// per VM; a fleet of 8 paid it eight times.</remarks>
    public bool TryMapFile(ulong physical, System.Runtime.InteropServices.SafeHandle file, long offset, ulong length)
    {
        if (!OperatingSystem.IsLinux() || Base == null || length == 0 || ((physical | (ulong)offset | length) & PageMask) != 0
            || physical >= Size || length > Size - physical) return false;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            void* at = Base + physical;
            if (Mmap(at, (nuint)length, ProtRw, MapPrivate | MapFixed, (int)file.DangerousGetHandle(), (nint)offset) == at) return true;
            // A failed MAP_FIXED may have unmapped the range: put anonymous RAM back before the caller copies.
            if (Mmap(at, (nuint)length, ProtRw, MapPrivate | MapFixed | MapAnonymous | MapNoreserve, -1, 0) != at)
                throw new OutOfMemoryException($"cannot restore {length >> 20} MiB of guest RAM at 0x{physical:x}");
            return false;
        }
        finally { if (added) file.DangerousRelease(); }
    }

    public bool IsCodePage(ulong page) => page < (ulong)_codePages.Length && Volatile.Read(ref _codePages[page]) != 0;

    /// <summary>Returns true when the page was not yet marked.</summary>
    public bool MarkCodePage(ulong page)
    {
        if (page >= (ulong)_codePages.Length || _codePages[page] != 0) return false;
        Volatile.Write(ref _codePages[page], 1);
        return true;
    }

    public void ClearCodePage(ulong page)
    {
        if (page < (ulong)_codePages.Length) Volatile.Write(ref _codePages[page], 0);
    }

    public void Dispose()
    {
        if (Base == null) return;
        if (OperatingSystem.IsLinux()) Munmap(Base, (nuint)Size);
        else NativeMemory.Free(Base);
        Base = null;
    }

    // Linux mmap(2) protection and flags (x86-64 values).
    const int ProtRw = 3, MapPrivate = 0x02, MapFixed = 0x10, MapAnonymous = 0x20, MapNoreserve = 0x4000;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(void* addr, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* addr, nuint length);
}
