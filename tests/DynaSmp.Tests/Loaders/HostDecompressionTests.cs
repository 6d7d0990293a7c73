using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using DynaSmp.Machine;
using DynaSmp.Machine.Loaders;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Loaders;

/// <summary>A bzImage's payload unpacked on the host (<see cref="LinuxKernel"/>): synthetic bzImages whose payload is a
/// compressed vmlinux ELF. Its startup_64 reports what it was handed; the bzImage's own 64-bit entry (the guest
/// decompressor's place) prints 'G' instead, so each boot shows which path ran. Every refusal falls back to the
/// guest's decompressor with its reason.</summary>
public unsafe class HostDecompressionTests
{
    const ulong Text = 0x100_0000, Bss = 0x100_2000;

    /// <summary>startup_64: the first command-line byte (via RSI = boot_params), CS + '0' ('@' for __BOOT_CS), CR0.PG,
    /// a byte of its BSS (must read 0) + '0', then exits with the e820 entry count.</summary>
    static byte[] StartupCode()
    {
        var a = new Assembler(64);
        a.mov(edx, 0x3F8);
        a.mov(eax, __dword_ptr[rsi + 0x228]); a.mov(al, __byte_ptr[rax]);
        a.@out(dx, al);
        a.mov(eax, cs); a.add(al, (byte)'0'); a.@out(dx, al);
        a.mov(rax, cr0); a.shr(eax, 31); a.add(al, (byte)'0'); a.@out(dx, al);
        a.mov(al, __byte_ptr[Bss + 0x800]); a.add(al, (byte)'0'); a.@out(dx, al);
        a.movzx(eax, __byte_ptr[rsi + 0x1E8]);
        a.mov(edx, 0xF4); a.@out(dx, al);
        a.hlt();
        return DynaSmp.Jit.CodeBytes.Assemble(a, Text + 0x40);
    }

    /// <summary>The bzImage's own entries: 'G' on the serial port, then exit 7.</summary>
    static byte[] GuestDecompressorEntry()
    {
        var a = new Assembler(64);
        a.mov(edx, 0x3F8); a.mov(al, (byte)'G'); a.@out(dx, al);
        a.mov(al, 7); a.mov(edx, 0xF4); a.@out(dx, al);
        a.hlt();
        return DynaSmp.Jit.CodeBytes.Assemble(a, Text + 0x200);
    }

    /// <summary>A vmlinux: text (startup_64 at +0x40) and a data segment whose BSS covers the byte the code reads.</summary>
    internal static byte[] VmlinuxElf(ulong entry = Text + 0x40, ulong textAddress = Text, ushort machine = 62)
    {
        var code = StartupCode();
        var text = new byte[0x40 + code.Length];
        code.CopyTo(text, 0x40);
        byte[] data = [1, 2, 3, 4];
        const int PhOff = 64, TextOff = 0x100;
        int dataOff = TextOff + text.Length;
        var elf = new byte[dataOff + data.Length];
        elf[0] = 0x7F; elf[1] = (byte)'E'; elf[2] = (byte)'L'; elf[3] = (byte)'F'; elf[4] = 2; elf[5] = 1; elf[6] = 1;
        W16(elf, 0x10, 2); W16(elf, 0x12, machine); W64(elf, 0x18, entry); W64(elf, 0x20, PhOff);
        W16(elf, 0x36, 56); W16(elf, 0x38, 3);
        ProgramHeader(elf, PhOff, 1, TextOff, textAddress, (ulong)text.Length, (ulong)text.Length);
        ProgramHeader(elf, PhOff + 56, 4, 0, 0, 0, 0); // PT_NOTE: skipped
        ProgramHeader(elf, PhOff + 112, 1, (ulong)dataOff, Bss, (ulong)data.Length, 0x1000);
        text.CopyTo(elf, TextOff);
        data.CopyTo(elf, dataOff);
        return elf;
    }

    static void ProgramHeader(byte[] elf, int at, uint type, ulong offset, ulong paddr, ulong filesz, ulong memsz)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(at), type);
        W64(elf, at + 0x08, offset); W64(elf, at + 0x10, 0xFFFF_FFFF_8000_0000 + paddr); W64(elf, at + 0x18, paddr);
        W64(elf, at + 0x20, filesz); W64(elf, at + 0x28, memsz);
    }

    /// <summary>A bzImage whose protected-mode part holds the guest-decompressor stand-in at +0x200 and, at +0x400,
    /// <paramref name="compressed"/> followed by the uncompressed size (<paramref name="claimedSize"/> if given), as
    /// kernel builds append it.</summary>
    static byte[] BzImageWithPayload(byte[] compressed, int uncompressed, uint initSize = 0x10_0000, int? claimedSize = null)
    {
        var pm = new byte[0x400 + compressed.Length + 4];
        pm[0] = 0xF4;
        GuestDecompressorEntry().CopyTo(pm, 0x200);
        compressed.CopyTo(pm, 0x400);
        BinaryPrimitives.WriteInt32LittleEndian(pm.AsSpan(0x400 + compressed.Length), claimedSize ?? uncompressed);
        var image = LinuxBootLoaderTests.BzImage(pm, initSize: initSize);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x248), 0x400);
        BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24C), (uint)(compressed.Length + 4));
        return image;
    }

    static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>xz through the host's liblzma (lzma_easy_buffer_encode, CRC32 check as kernel builds use); null without it.</summary>
    static byte[]? Xz(byte[] data)
    {
        if (!NativeLibrary.TryLoad("liblzma.so.5", out var lib) || !NativeLibrary.TryGetExport(lib, "lzma_easy_buffer_encode", out var fn)) return null;
        var encode = (delegate* unmanaged<uint, int, void*, byte*, nuint, byte*, nuint*, nuint, int>)fn;
        var output = new byte[data.Length + 4096];
        nuint pos = 0;
        fixed (byte* i = data) fixed (byte* o = output) Assert.Equal(0, encode(6, 1, null, i, (nuint)data.Length, o, &pos, (nuint)output.Length));
        return output[..(int)pos];
    }

    /// <summary>zstd through the host's libzstd (ZSTD_compress); null without it.</summary>
    static byte[]? Zstd(byte[] data)
    {
        if (!NativeLibrary.TryLoad("libzstd.so.1", out var lib) || !NativeLibrary.TryGetExport(lib, "ZSTD_compress", out var fn)) return null;
        var compress = (delegate* unmanaged<byte*, nuint, byte*, nuint, int, nuint>)fn;
        var output = new byte[data.Length + 4096];
        nuint n;
        fixed (byte* i = data) fixed (byte* o = output) n = compress(o, (nuint)output.Length, i, (nuint)data.Length, 19);
        Assert.True(n < (nuint)output.Length);
        return output[..(int)n];
    }

    // Dirties the BSS the plan must zero (a reset re-applies a plan to used RAM).
    static (int? Status, string Serial, LinuxBootPlan Plan) Boot(LinuxKernel kernel, ulong ram = 64UL << 20) =>
        LinuxBootLoaderTests.Boot(kernel, "hi", ram, pc => { if (Bss < ram) pc.Vm.Ram.Span(Bss + 0x800, 1)[0] = 0x55; });

    public static TheoryData<string> Formats() => ["gzip", "xz", "zstd"];

    [Theory]
    [MemberData(nameof(Formats))]
    public void Host_decompressed_vmlinux_is_entered_at_startup_64_in_long_mode_with_boot_params(string format)
    {
        var elf = VmlinuxElf();
        byte[]? compressed = format switch { "gzip" => Gzip(elf), "xz" => Xz(elf), _ => Zstd(elf) };
        if (compressed == null)
        {
            // This host lacks the library: the payload must fall back to the guest with that reason, not fail.
            var fallback = LinuxKernel.Open(BzImageWithPayload(format == "xz" ? [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0, 0] : [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0], elf.Length));
            Assert.Contains("not installed", fallback.GuestDecompressesBecause);
            Assert.Equal("G", Boot(fallback).Serial);
            return;
        }
        var kernel = LinuxKernel.Open(BzImageWithPayload(compressed, elf.Length));
        Assert.Null(kernel.GuestDecompressesBecause);
        Assert.Equal(format, kernel.PayloadFormat);
        var (status, serial, plan) = Boot(kernel);
        Assert.True(plan.HostDecompressed);
        Assert.Equal(Text + 0x40, plan.EntryPoint);
        Assert.Equal(2, plan.Kernel.Count);
        Assert.Equal("h@10", serial);           // cmdline, __BOOT_CS, paging on, BSS zeroed
        Assert.Equal((3 << 1) | 1, status);     // three e820 entries from boot_params
    }

    [Fact]
    public void A_virtual_elf_entry_is_taken_as_its_physical_address()
    {
        var kernel = LinuxKernel.Open(BzImageWithPayload(Gzip(VmlinuxElf(entry: 0xFFFF_FFFF_8000_0000 + Text + 0x40)), VmlinuxElf().Length));
        Assert.Equal(Text + 0x40, kernel.Decompressed!.Entry);
        Assert.Equal("h@10", Boot(kernel).Serial);
    }

    public static TheoryData<string, string> GuestDecompresses() => new()
    {
        { "asked", "--guest-decompress" },
        { "corrupt", "" }, // the framework's gzip reader may throw, stop short or (it skips the CRC) hand back garbage
        { "short-claim", "gzip data ended" },
        { "huge-claim", "claims" },
        { "bzip2", "not bzip2" },
        { "not-elf", "not an ELF" },
        { "wrong-machine", "not x86-64" },
        { "outside-init-size", "init_size window" },
        { "relocated", "preferred address" },
    };

    /// <summary>Whatever stops the host path, the guest's own decompressor runs (the bzImage's 64-bit entry), and the
    /// reason is kept for the user.</summary>
    [Theory]
    [MemberData(nameof(GuestDecompresses))]
    public void The_guest_decompresses_when_the_host_cannot_and_says_why(string kind, string reason)
    {
        var elf = VmlinuxElf();
        var gz = Gzip(elf);
        ulong ram = 64UL << 20;
        byte[] image = kind switch
        {
            "corrupt" => BzImageWithPayload(Corrupt(gz), elf.Length),
            "short-claim" => BzImageWithPayload(gz, elf.Length, claimedSize: elf.Length + 100),
            "huge-claim" => BzImageWithPayload(gz, elf.Length, claimedSize: int.MaxValue),
            "bzip2" => BzImageWithPayload("BZh91AY&SY"u8.ToArray(), elf.Length),
            "not-elf" => BzImageWithPayload(Gzip(new byte[256]), 256),
            "wrong-machine" => BzImageWithPayload(Gzip(VmlinuxElf(machine: 3)), elf.Length),
            "outside-init-size" => BzImageWithPayload(gz, elf.Length, initSize: 0x1000),
            _ => BzImageWithPayload(gz, elf.Length),
        };
        if (kind == "relocated") ram = 12UL << 20; // 16 MiB is past RAM: the kernel goes to 2 MiB
        var kernel = LinuxKernel.Open(image, hostDecompress: kind != "asked");
        var (status, serial, plan) = Boot(kernel, ram);
        Assert.False(plan.HostDecompressed);
        Assert.Contains(reason, plan.GuestDecompressesBecause);
        Assert.Equal("G", serial);
        Assert.Equal((7 << 1) | 1, status);
    }

    static byte[] Corrupt(byte[] gz)
    {
        var c = (byte[])gz.Clone();
        for (int k = 12; k < c.Length - 8; k += 7) c[k] ^= 0x5A;
        return c;
    }

    public static TheoryData<string, string> MalformedElves() => new()
    {
        { "program-headers-outside", "outside the file" },
        { "segment-outside", "malformed" },
        { "overlap", "overlap" },
        { "entry-outside", "in no loadable segment" },
        { "no-load", "no loadable segment" },
        { "32-bit", "64-bit ELF" },
    };

    [Theory]
    [MemberData(nameof(MalformedElves))]
    public void Malformed_vmlinux_is_refused_with_the_reason(string kind, string expected)
    {
        var elf = VmlinuxElf();
        const int Ph = 64;
        switch (kind)
        {
            case "program-headers-outside": W64(elf, 0x20, 0x7FFF_FFFF); break;
            case "segment-outside": W64(elf, Ph + 0x20, 0x10_0000); W64(elf, Ph + 0x28, 0x10_0000); break;
            case "overlap": W64(elf, Ph + 112 + 0x18, Text + 0x10); break;
            case "entry-outside": W64(elf, 0x18, 0x5000_0000); break;
            case "no-load": BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(Ph), 4); BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(Ph + 112), 4); break;
            case "32-bit": elf[4] = 1; break;
        }
        var e = Assert.Throws<LinuxImageException>(() => Vmlinux.Parse(elf));
        Assert.Contains(expected, e.Message);
    }

    /// <summary>The kernel cache: a second open takes the vmlinux from disk and boots the same; an entry whose bytes
    /// changed, or that was cut short, is not used but decompressed and written again.</summary>
    [Theory]
    [InlineData("intact")]
    [InlineData("flipped")]
    [InlineData("truncated")]
    [InlineData("not-elf")]
    [InlineData("sha256-trailer")]
    public void The_kernel_cache_serves_intact_entries_only(string entry)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"dynasmp-kcache-{Environment.ProcessId}-{entry}");
        try
        {
            var cache = new KernelCache(dir);
            var elf = VmlinuxElf();
            var image = BzImageWithPayload(Gzip(elf), elf.Length);
            var first = LinuxKernel.Open(image, cache: cache);
            Assert.False(first.FromCache);
            Assert.Equal(dir, first.CachedIn);
            string file = Assert.Single(Directory.GetFiles(dir));
            var bytes = File.ReadAllBytes(file);
            Assert.Equal(elf.Length + KernelCache.ChecksumSize, bytes.Length);
            switch (entry)
            {
                case "flipped": bytes[0x141] ^= 1; File.WriteAllBytes(file, bytes); break; // startup_64's serial port: still an ELF
                case "truncated": File.WriteAllBytes(file, bytes[..^1]); break;
                case "not-elf": // intact by its checksum, but no vmlinux
                    var junk = new byte[elf.Length];
                    File.WriteAllBytes(file, [.. junk, .. KernelCache.Checksum(junk)]);
                    break;
                case "sha256-trailer": // an entry of the earlier format: the content, then its SHA-256
                    File.WriteAllBytes(file, [.. elf, .. System.Security.Cryptography.SHA256.HashData(elf)]);
                    break;
            }
            var second = LinuxKernel.Open(image, cache: cache);
            Assert.Equal(entry == "intact", second.FromCache);
            Assert.Contains(entry == "intact" ? "from the kernel cache" : "decompressed on the host", second.Describe());
            Assert.Equal("h@10", Boot(second).Serial);
            Assert.Equal(elf.Length + KernelCache.ChecksumSize, new FileInfo(file).Length); // rewritten whole when it was not used
            Assert.True(LinuxKernel.Open(image, cache: cache).FromCache);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData(0x10_0000UL)]  // the content's page offsets match: whole pages mapped from the file
    [InlineData(0x10_0123UL)]  // they do not: copied
    public void A_cached_kernel_is_mapped_into_guest_RAM_copy_on_write(ulong physical)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"dynasmp-kmap-{Environment.ProcessId}-{physical:x}");
        try
        {
            var cache = new KernelCache(dir);
            var content = new byte[5 * 4096 + 100];
            new Random(7).NextBytes(content);
            byte[] payload = [1, 2, 3];
            Assert.True(cache.TryStore(payload, content));
            var loaded = cache.TryLoad(payload, content.Length)!.Value;
            using var ram = new DynaSmp.Jit.Memory.GuestRam(4 << 20);
            ram.Span(physical - 1, 1)[0] = 0xAA; // neighbours untouched
            ram.Span(physical + (ulong)content.Length, 1)[0] = 0xBB;
            KernelCache.WriteSegment(ram, physical, loaded);
            Assert.True(ram.Span(physical, content.Length).SequenceEqual(content));
            Assert.Equal(0xAA, ram.Span(physical - 1, 1)[0]);
            Assert.Equal(0xBB, ram.Span(physical + (ulong)content.Length, 1)[0]);
            ram.Span(physical + 8192, 1)[0] ^= 0xFF; // the guest's writes stay in its RAM
            Assert.Equal(content[8192], loaded.Span[8192]);
            Assert.Equal(content.Length + KernelCache.ChecksumSize, File.ReadAllBytes(cache.PathFor(payload)).Length);
            Assert.Equal(content[8192], File.ReadAllBytes(cache.PathFor(payload))[8192]);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Guest_RAM_maps_only_page_aligned_file_ranges_inside_it()
    {
        string file = Path.Combine(Path.GetTempPath(), $"dynasmp-rammap-{Environment.ProcessId}");
        File.WriteAllBytes(file, Enumerable.Range(0, 3 * 4096).Select(k => unchecked((byte)(k * 7 + 1))).ToArray());
        try
        {
            using var handle = File.OpenHandle(file);
            using var ram = new DynaSmp.Jit.Memory.GuestRam(1 << 20);
            Assert.False(ram.TryMapFile(0x1001, handle, 0, 4096));       // misaligned address
            Assert.False(ram.TryMapFile(0x1000, handle, 1, 4096));       // misaligned offset
            Assert.False(ram.TryMapFile(0xFF000, handle, 0, 2 * 4096));  // runs past the end of RAM
            Assert.True(ram.Span(0x1000, 4096).IndexOfAnyExcept((byte)0) < 0);
            if (!OperatingSystem.IsLinux()) return;
            Assert.True(ram.TryMapFile(0x2000, handle, 4096, 2 * 4096));
            Assert.Equal(unchecked((byte)(4096 * 7 + 1)), ram.Span(0x2000, 1)[0]);
            Assert.Equal(unchecked((byte)((3 * 4096 - 1) * 7 + 1)), ram.Span(0x2000 + 2 * 4096 - 1, 1)[0]);
            ram.Span(0x2000, 1)[0] = 0x55;
            Assert.Equal(unchecked((byte)(4096 * 7 + 1)), File.ReadAllBytes(file)[4096]); // private: the file keeps its bytes
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void A_cache_that_cannot_be_written_only_means_no_cache()
    {
        string blocker = Path.Combine(Path.GetTempPath(), $"dynasmp-kcache-file-{Environment.ProcessId}");
        File.WriteAllText(blocker, "a file where the cache directory would go");
        try
        {
            var elf = VmlinuxElf();
            var kernel = LinuxKernel.Open(BzImageWithPayload(Gzip(elf), elf.Length), cache: new KernelCache(Path.Combine(blocker, "vmlinux")));
            Assert.Null(kernel.CachedIn);
            Assert.False(kernel.FromCache);
            Assert.Equal("h@10", Boot(kernel).Serial);
        }
        finally { File.Delete(blocker); }
    }

    [Fact]
    public void The_kernel_cache_keeps_the_most_recently_used_entries()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"dynasmp-kcache-evict-{Environment.ProcessId}");
        try
        {
            var cache = new KernelCache(dir);
            var payloads = new List<byte[]>();
            var start = DateTime.UtcNow.AddHours(-1);
            for (int k = 0; k < KernelCache.MaxEntries + 2; k++)
            {
                byte[] payload = [(byte)k, 1, 2, 3, 4, 0, 0, 0];
                payloads.Add(payload);
                Assert.True(cache.TryStore(payload, [(byte)k, 9, 9]));
                File.SetLastWriteTimeUtc(cache.PathFor(payload), start.AddMinutes(k)); // stored in this order
                if (k == 1) Assert.NotNull(cache.TryLoad(payloads[0], 3)); // a load makes the first entry the newest
            }
            Assert.Equal(KernelCache.MaxEntries, Directory.GetFiles(dir).Length);
            Assert.NotNull(cache.TryLoad(payloads[0], 3));
            Assert.Null(cache.TryLoad(payloads[1], 3));
            Assert.Null(cache.TryLoad(payloads[2], 3));
            Assert.Equal(new byte[] { (byte)(KernelCache.MaxEntries + 1), 9, 9 }, cache.TryLoad(payloads[^1], 3)!.Value.ToArray());
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    static void W16(byte[] b, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), v);
    static void W64(byte[] b, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
}
