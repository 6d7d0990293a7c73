using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// A bzImage's compressed payload (the vmlinux ELF that the kernel's own decompressor would unpack), decompressed on
/// the host instead. Kernel builds append the uncompressed size as 4 little-endian bytes after the compressed stream
/// (scripts/Makefile.lib, size_append), for every compressor. gzip is decoded by the framework; xz and zstd (the
/// formats distributions use) by the host's liblzma.so.5 and libzstd.so.1, present on any Debian-based host, loaded
/// only when needed. Anything else (bzip2, lzma, lzo, lz4, or a missing library) returns a reason and the guest
/// decompresses itself, as under QEMU.
/// </summary>
public static unsafe class KernelPayload
{
    /// <summary>The largest vmlinux accepted (Debian's is 66 MB); a bigger claimed size means a corrupt payload.</summary>
    public const int MaxUncompressed = 512 << 20;

    /// <summary>The payload's format from its magic bytes, as the kernel's decompressor selection names them.</summary>
    public static string Format(ReadOnlySpan<byte> payload) => payload switch
    {
        [0x1F, 0x8B, ..] => "gzip",
        [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, ..] => "xz",
        [0x28, 0xB5, 0x2F, 0xFD, ..] => "zstd",
        [0x42, 0x5A, 0x68, ..] => "bzip2",
        [0x5D, 0x00, ..] => "lzma",
        [0x89, 0x4C, 0x5A, 0x4F, ..] => "lzo",
        [0x02, 0x21, 0x4C, 0x18, ..] => "lz4",
        _ => "unknown",
    };

    const string Lzma = "liblzma.so.5", Zstd = "libzstd.so.1";
    const string LzmaDecode = "lzma_stream_buffer_decode", ZstdDecompress = "ZSTD_decompress";

    /// <summary>Whether this host can decompress <paramref name="format"/> payloads: gzip always, xz and zstd when their
    /// library is installed.</summary>
    public static bool CanDecompress(string format) => format switch
    {
        "gzip" => true,
        "xz" => TryExport(Lzma, LzmaDecode, out _, out _),
        "zstd" => TryExport(Zstd, ZstdDecompress, out _, out _),
        _ => false,
    };

    /// <summary>Decompresses <paramref name="payload"/> (the compressed stream plus its 4-byte size), of
    /// <paramref name="format"/> (<see cref="Format"/>) and <paramref name="size"/> bytes uncompressed
    /// (<see cref="ClaimedSize"/>), or returns null with <paramref name="why"/> saying why not. Never throws for bad data:
    /// a corrupt payload is the guest's to find.</summary>
    public static byte[]? TryDecompress(ReadOnlySpan<byte> payload, string format, int size, out string? why)
    {
        if (format is not ("gzip" or "xz" or "zstd"))
        {
            why = $"DynaSmp decompresses gzip, xz and zstd payloads on the host, not {format}";
            return null;
        }
        var stream = payload[..^4];
        var output = new byte[size];
        try
        {
            why = format switch
            {
                "gzip" => Gunzip(stream, output),
                "xz" => Unxz(stream, output),
                _ => Unzstd(stream, output),
            };
        }
        catch (Exception e) when (e is InvalidDataException or IOException) { why = $"corrupt {format} data ({e.Message})"; }
        return why == null ? output : null;
    }

    /// <summary>The uncompressed size the payload's last 4 bytes claim, or 0 with <paramref name="why"/> if it is implausible.</summary>
    public static int ClaimedSize(ReadOnlySpan<byte> payload, out string? why)
    {
        why = null;
        if (payload.Length < 8) { why = $"a {payload.Length}-byte payload is too short"; return 0; }
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(payload[^4..]);
        if (size == 0 || size > MaxUncompressed) { why = $"the payload claims {size} uncompressed bytes"; return 0; }
        return (int)size;
    }

    static string? Gunzip(ReadOnlySpan<byte> stream, byte[] output)
    {
        fixed (byte* p = stream)
        {
            using var source = new UnmanagedMemoryStream(p, stream.Length);
            using var gz = new GZipStream(source, CompressionMode.Decompress);
            int got = gz.ReadAtLeast(output, output.Length, throwOnEndOfStream: false);
            return got == output.Length ? null : $"gzip data ended after {got} of the {output.Length} bytes the payload claims";
        }
    }

    static string? Unxz(ReadOnlySpan<byte> stream, byte[] output)
    {
        if (!TryExport(Lzma, LzmaDecode, out var fn, out var why)) return why;
        // lzma_ret lzma_stream_buffer_decode(uint64_t *memlimit, uint32_t flags, const lzma_allocator *allocator,
        //     const uint8_t *in, size_t *in_pos, size_t in_size, uint8_t *out, size_t *out_pos, size_t out_size)
        var decode = (delegate* unmanaged<ulong*, uint, void*, byte*, nuint*, nuint, byte*, nuint*, nuint, int>)fn;
        ulong memLimit = 1UL << 30; // the kernel's xz uses a 32 MiB dictionary
        nuint inPos = 0, outPos = 0;
        int ret;
        fixed (byte* inp = stream)
        fixed (byte* outp = output)
            ret = decode(&memLimit, 0, null, inp, &inPos, (nuint)stream.Length, outp, &outPos, (nuint)output.Length);
        if (ret != 0) return $"liblzma could not decode the xz payload (lzma_ret {ret})";
        return outPos == (nuint)output.Length ? null : $"the xz payload decoded to {outPos} bytes, not the {output.Length} it claims";
    }

    static string? Unzstd(ReadOnlySpan<byte> stream, byte[] output)
    {
        if (!TryExport(Zstd, ZstdDecompress, out var fn, out var why)) return why;
        if (!TryExport(Zstd, "ZSTD_isError", out var isErrorFn, out why)) return why;
        var decompress = (delegate* unmanaged<byte*, nuint, byte*, nuint, nuint>)fn;
        var isError = (delegate* unmanaged<nuint, uint>)isErrorFn;
        nuint n;
        fixed (byte* inp = stream)
        fixed (byte* outp = output)
            n = decompress(outp, (nuint)output.Length, inp, (nuint)stream.Length);
        if (isError(n) != 0) return "libzstd could not decode the zstd payload";
        return n == (nuint)output.Length ? null : $"the zstd payload decoded to {n} bytes, not the {output.Length} it claims";
    }

    static bool TryExport(string library, string symbol, out IntPtr fn, out string? why)
    {
        fn = IntPtr.Zero;
        if (!NativeLibrary.TryLoad(library, out var handle)) { why = $"{library} is not installed on this host"; return false; }
        if (!NativeLibrary.TryGetExport(handle, symbol, out fn)) { why = $"{library} has no {symbol}"; return false; }
        why = null;
        return true;
    }
}
