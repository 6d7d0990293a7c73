using System.Buffers.Binary;
using System.Diagnostics;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// A bzImage opened once for every VM that boots it. With host decompression (the default of `run` and `boot`), its
/// payload is unpacked here, once, and each VM enters the kernel proper's startup_64 directly, as Firecracker and
/// cloud-hypervisor boot a vmlinux: the guest skips its decompressor, which costs a vCPU seconds of emulated work per
/// VM, and KASLR (the decompressor chooses the random offset). Without it, or when the payload cannot be unpacked here,
/// the guest runs the kernel's own decompressor at the bzImage's 64-bit entry, as QEMU's -kernel does.
/// </summary>
public sealed class LinuxKernel
{
    LinuxKernel(ReadOnlyMemory<byte> image, Vmlinux? vmlinux, string format, string? guestDecompressesBecause, TimeSpan hostTime,
        KernelCache? cache = null, bool fromCache = false)
    {
        Image = image; Decompressed = vmlinux; PayloadFormat = format; GuestDecompressesBecause = guestDecompressesBecause; HostDecompressTime = hostTime;
        CachedIn = cache?.Directory; FromCache = fromCache;
    }

    public ReadOnlyMemory<byte> Image { get; }
    /// <summary>The payload unpacked on the host; null when the guest decompresses.</summary>
    public Vmlinux? Decompressed { get; }
    /// <summary>gzip, xz, zstd, ... (<see cref="KernelPayload.Format"/>), or "none" for an image without payload fields.</summary>
    public string PayloadFormat { get; }
    /// <summary>Why the guest's decompressor runs (asked for, or what stopped the host); null when the host unpacked it.</summary>
    public string? GuestDecompressesBecause { get; }
    /// <summary>Time to decompress (or to load and check the cached copy).</summary>
    public TimeSpan HostDecompressTime { get; }
    /// <summary>The <see cref="KernelCache"/> directory the vmlinux came from (<see cref="FromCache"/>) or was stored in; null if neither.</summary>
    public string? CachedIn { get; }
    public bool FromCache { get; }

    /// <summary>One line for the user: what was loaded and who decompresses it.</summary>
    public string Describe() => Decompressed is { } v
        ? FromCache
            ? $"{PayloadFormat} payload's vmlinux ({(v.End - v.Start) >> 20} MiB) from the kernel cache {CachedIn} in {HostDecompressTime.TotalSeconds:F2} s; entering startup_64 at 0x{v.Entry:x}"
            : $"{PayloadFormat} payload decompressed on the host ({(v.End - v.Start) >> 20} MiB vmlinux in {HostDecompressTime.TotalSeconds:F2} s" +
              $"{(CachedIn != null ? $", kept in {CachedIn}" : "")}); entering startup_64 at 0x{v.Entry:x}"
        : GuestDecompressorRuns(GuestDecompressesBecause);

    internal static string GuestDecompressorRuns(string? because) => $"the kernel's own decompressor runs in the guest: {because}";

    /// <summary>Opens <paramref name="image"/>, taking the vmlinux from <paramref name="cache"/> when it holds an intact
    /// copy and storing it there after decompressing. Never throws: an image the boot protocol cannot load is refused by
    /// <see cref="LinuxBootLoader.Plan(LinuxKernel, ulong, string, ReadOnlyMemory{byte}, bool)"/>, with its reason.</summary>
    public static LinuxKernel Open(ReadOnlyMemory<byte> image, bool hostDecompress = true, KernelCache? cache = null)
    {
        var b = image.Span;
        // payload_offset/payload_length (protocol 2.08), relative to the protected-mode kernel.
        if (b.Length < 0x250 || BinaryPrimitives.ReadUInt32LittleEndian(b[0x202..]) != LinuxBootLoader.HeaderMagic || BinaryPrimitives.ReadUInt16LittleEndian(b[0x206..]) < 0x0208)
            return new LinuxKernel(image, null, "none", "the image has no payload fields (not a bzImage of boot protocol 2.08 or later)", default);
        long offset = LinuxBootLoader.ProtectedModeOffset(b) + BinaryPrimitives.ReadUInt32LittleEndian(b[0x248..]);
        long length = BinaryPrimitives.ReadUInt32LittleEndian(b[0x24C..]);
        if (offset > b.Length || length > b.Length - offset)
            return new LinuxKernel(image, null, "none", "payload_offset and payload_length point outside the file", default);
        var payload = image.Slice((int)offset, (int)length);
        string format = KernelPayload.Format(payload.Span);
        if (!hostDecompress) return new LinuxKernel(image, null, format, "--guest-decompress", default);
        var clock = Stopwatch.StartNew();
        int size = KernelPayload.ClaimedSize(payload.Span, out string? why);
        if (why != null) return new LinuxKernel(image, null, format, why, default);
        if (cache?.TryLoad(payload.Span, size) is { } cached)
        {
            try { return new LinuxKernel(image, Vmlinux.Parse(cached), format, null, clock.Elapsed, cache, fromCache: true); }
            catch (LinuxImageException) { } // an entry that passed its checksum but is no vmlinux: decompress as if absent
        }
        var elf = KernelPayload.TryDecompress(payload.Span, format, size, out why);
        if (elf == null) return new LinuxKernel(image, null, format, why, default);
        try
        {
            var vmlinux = Vmlinux.Parse(elf);
            var took = clock.Elapsed;
            bool stored = cache != null && cache.TryStore(payload.Span, elf);
            return new LinuxKernel(image, vmlinux, format, null, took, stored ? cache : null);
        }
        catch (LinuxImageException e) { return new LinuxKernel(image, null, format, e.Message, default); }
    }
}
