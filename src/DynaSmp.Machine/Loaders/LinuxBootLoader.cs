using System.Buffers.Binary;
using System.Text;
using DynaSmp.Machine.Firmware;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 32- and 64-bit entry: reads a bzImage's setup
/// header (protocol 2.10 or later, the version that added the fields this loader relies on), decides where the
/// protected-mode kernel, command line, initrd, zero page (boot_params) and the entry page tables go, and builds
/// boot_params: the header copied from the image, loader type, command line and initrd pointers, the e820 map and
/// the ACPI RSDP address. Nothing touches guest memory until <see cref="LinuxBootPlan.Apply"/>.
/// </summary>
public static class LinuxBootLoader
{
    public const ushort MinimumProtocol = 0x020A;
    internal const uint HeaderMagic = 0x5372_6448; // "HdrS"
    const byte LoadedHigh = 0x01;
    const ushort XlfKernel64 = 0x01;

    // Fixed low-memory layout (all in [0x10000, 0x30000), RAM that no image uses before it runs).
    public const ulong BootParamsAddress = 0x10000, PageTablesAddress = 0x11000, GdtAddress = 0x17000, CommandLineAddress = 0x20000;
    public const ulong AcpiAddress = PcMemoryMap.FirmwareStart, MpTableAddress = 0xF0000;
    const int PageTablePages = 6; // PML4, PDPT, four page directories: 4 GiB identity-mapped with 2 MiB pages

    /// <summary>Plans a boot of <paramref name="image"/> with the kernel's own decompressor running in the guest.</summary>
    public static LinuxBootPlan Plan(ReadOnlyMemory<byte> image, ulong ramSize, string commandLine, ReadOnlyMemory<byte> initrd, bool prefer64 = true) =>
        Plan(LinuxKernel.Open(image, hostDecompress: false), ramSize, commandLine, initrd, prefer64);

    /// <summary>Plans a boot of <paramref name="kernel"/>: at startup_64 of its host-decompressed vmlinux when it has one
    /// and the 64-bit entry at the preferred address is used, else at the bzImage's own entry. Throws
    /// <see cref="LinuxImageException"/> for anything that is not a bootable bzImage or does not fit in
    /// <paramref name="ramSize"/>.</summary>
    public static LinuxBootPlan Plan(LinuxKernel kernel, ulong ramSize, string commandLine, ReadOnlyMemory<byte> initrd, bool prefer64 = true)
    {
        var image = kernel.Image;
        var b = image.Span;
        if (b.Length < 0x264) throw new LinuxImageException($"the file is {b.Length} bytes, too short for a Linux boot sector and setup header (not a bzImage)");
        if (U16(b, 0x1FE) != 0xAA55) throw new LinuxImageException("no boot sector signature 0xAA55 at offset 0x1FE (not a bzImage)");
        if (U32(b, 0x202) != HeaderMagic) throw new LinuxImageException("no \"HdrS\" setup header at offset 0x202 (not a bzImage, or a kernel older than boot protocol 2.00)");
        ushort version = U16(b, 0x206);
        if (version < MinimumProtocol)
            throw new LinuxImageException($"boot protocol {version >> 8}.{version & 0xFF:d2}: DynaSmp needs {MinimumProtocol >> 8}.{MinimumProtocol & 0xFF:d2} or later (Linux 2.6.31+)");
        int headerEnd = 0x202 + b[0x201];
        if (headerEnd > b.Length || headerEnd < 0x264)
            throw new LinuxImageException($"the setup header's length (jump at 0x200 to 0x{headerEnd:x}) is inconsistent with protocol {version >> 8}.{version & 0xFF:d2}");
        byte loadFlags = b[0x211];
        if ((loadFlags & LoadedHigh) == 0) throw new LinuxImageException("the kernel is a zImage (loaded low, LOADED_HIGH clear); only bzImages are supported");
        long kernelOffset = ProtectedModeOffset(b);
        if (kernelOffset >= b.Length) throw new LinuxImageException($"setup_sects = {kernelOffset / 512 - 1} puts the protected-mode kernel at 0x{kernelOffset:x}, past the end of the {b.Length}-byte file");
        uint kernelAlignment = U32(b, 0x230);
        bool relocatable = b[0x234] != 0;
        ushort xloadflags = U16(b, 0x236);
        uint cmdlineMax = U32(b, 0x238);
        uint initrdMax = U32(b, 0x22C);
        ulong prefAddress = U64(b, 0x258);
        uint initSize = U32(b, 0x260);
        uint payloadLength = U32(b, 0x24C);
        long kernelLength = b.Length - kernelOffset;
        if (payloadLength > kernelLength) throw new LinuxImageException($"the header's payload_length ({payloadLength}) runs past the end of the protected-mode kernel ({kernelLength} bytes): the file is truncated");
        if (kernelAlignment == 0 || (kernelAlignment & (kernelAlignment - 1)) != 0) throw new LinuxImageException($"kernel_alignment 0x{kernelAlignment:x} is not a power of two");
        if (initSize < kernelLength) initSize = (uint)kernelLength;

        // Where the protected-mode kernel goes: its preferred address if RAM allows, else (relocatable) the first
        // aligned address above 1 MiB; the kernel decompresses in place from there.
        ulong highTop = PcMemoryMap.HighRamTop(ramSize);
        ulong load = prefAddress != 0 ? prefAddress : 0x100000;
        if (load + initSize > highTop && relocatable) load = AlignUp(PcMemoryMap.HighMemoryStart, kernelAlignment);
        if (load < PcMemoryMap.HighMemoryStart || load + initSize > highTop)
            throw new LinuxImageException($"the kernel needs 0x{initSize:x} bytes at 0x{load:x} (init_size), more than the {highTop >> 20} MiB of RAM below the MMIO hole: use a larger --mem");
        ulong kernelEnd = load + initSize;

        // Command line: NUL-terminated, at most cmdline_size bytes before the NUL.
        byte[] cmd = Encoding.ASCII.GetBytes(commandLine);
        if (Array.IndexOf(cmd, (byte)0) >= 0) throw new LinuxImageException("the kernel command line contains a NUL byte");
        if ((uint)cmd.Length > cmdlineMax) throw new LinuxImageException($"the kernel command line is {cmd.Length} bytes; this kernel accepts at most {cmdlineMax}");

        // initrd: as high as allowed (initrd_addr_max, the top of low RAM), page-aligned, above the kernel's init_size.
        ulong initrdAddress = 0;
        if (initrd.Length > 0)
        {
            ulong limit = Math.Min((ulong)initrdMax + 1, highTop);
            if (limit < (ulong)initrd.Length) throw new LinuxImageException($"the initrd ({initrd.Length} bytes) does not fit below 0x{limit:x}: use a larger --mem");
            initrdAddress = (limit - (ulong)initrd.Length) & ~0xFFFUL;
            if (initrdAddress < kernelEnd)
                throw new LinuxImageException($"the initrd ({initrd.Length >> 10} KiB) does not fit between the kernel (ends at 0x{kernelEnd:x}) and 0x{limit:x}: use a larger --mem");
        }

        bool entry64 = prefer64 && (xloadflags & XlfKernel64) != 0;
        var zeroPage = new byte[4096];
        b.Slice(0x1F1, headerEnd - 0x1F1).CopyTo(zeroPage.AsSpan(0x1F1));
        zeroPage[0x210] = 0xFF;          // type_of_loader: undefined boot loader
        W32(zeroPage, 0x214, (uint)load); // code32_start
        W32(zeroPage, 0x218, (uint)initrdAddress);
        W32(zeroPage, 0x21C, (uint)initrd.Length);
        W32(zeroPage, 0x0C0, (uint)(initrdAddress >> 32));
        W32(zeroPage, 0x0C4, (uint)((ulong)initrd.Length >> 32));
        W32(zeroPage, 0x228, (uint)CommandLineAddress);
        if (version >= 0x020E) W64(zeroPage, 0x070, AcpiAddress); // acpi_rsdp_addr (2.14)
        var e820 = PcMemoryMap.Build(ramSize);
        zeroPage[0x1E8] = (byte)e820.Count;
        for (int k = 0; k < e820.Count; k++)
        {
            int at = 0x2D0 + 20 * k;
            W64(zeroPage, at, e820[k].Start);
            W64(zeroPage, at + 8, e820[k].Length);
            W32(zeroPage, at + 16, (uint)e820[k].Type);
        }

        // A host-decompressed vmlinux goes where the kernel's decompressor would put it without KASLR: linked at the
        // preferred address, inside [load, load + init_size), entered at startup_64 in 64-bit mode.
        var vmlinux = kernel.Decompressed;
        string? guestDecompresses = kernel.GuestDecompressesBecause;
        if (vmlinux != null)
        {
            if (!entry64) guestDecompresses = "the 32-bit entry is used, and a vmlinux is entered in 64-bit mode";
            else if (load != prefAddress) guestDecompresses = $"the kernel cannot go at its preferred address 0x{prefAddress:x} with this much RAM";
            else if (vmlinux.Start < load || vmlinux.End > kernelEnd)
                guestDecompresses = $"the vmlinux (0x{vmlinux.Start:x}-0x{vmlinux.End:x}) does not lie in the kernel's init_size window 0x{load:x}-0x{kernelEnd:x}";
            if (guestDecompresses != null) vmlinux = null;
        }
        IReadOnlyList<LoadSegment> segments = vmlinux?.Segments
            ?? [new LoadSegment(load, image.Slice((int)kernelOffset), (ulong)kernelLength)];
        ulong entry = vmlinux?.Entry ?? (entry64 ? load + 0x200 : load);
        return new LinuxBootPlan(version, load, segments, initSize, zeroPage, cmd, initrd, initrdAddress, entry, entry64, ramSize,
            vmlinux == null ? guestDecompresses ?? "" : null);
    }

    /// <summary>Where the protected-mode kernel starts in the file: after the boot sector and setup_sects sectors (0 means 4).</summary>
    internal static long ProtectedModeOffset(ReadOnlySpan<byte> b) => ((b[0x1F1] == 0 ? 4 : b[0x1F1]) + 1L) * 512;

    static ulong AlignUp(ulong v, ulong a) => (v + a - 1) & ~(a - 1);

    /// <summary>Identity page tables for the 64-bit entry: 4 GiB with 2 MiB pages, at <see cref="PageTablesAddress"/>.</summary>
    internal static byte[] IdentityPageTables()
    {
        var t = new byte[PageTablePages * 4096];
        const ulong PresentWritable = 0x3, Large = 0x80;
        W64(t, 0, PageTablesAddress + 0x1000 | PresentWritable);                        // PML4[0] -> PDPT
        for (int g = 0; g < 4; g++)
        {
            ulong pd = PageTablesAddress + 0x2000 + (ulong)g * 0x1000;
            W64(t, 0x1000 + 8 * g, pd | PresentWritable);                               // PDPT[g] -> PD g
            for (int e = 0; e < 512; e++)
                W64(t, 0x2000 + g * 0x1000 + 8 * e, ((ulong)g << 30 | (ulong)e << 21) | PresentWritable | Large);
        }
        return t;
    }

    /// <summary>The boot GDT: __BOOT_CS (0x10) and __BOOT_DS (0x18), flat 4 GiB; CS is 64-bit for the 64-bit entry.</summary>
    internal static byte[] BootGdt(bool longMode)
    {
        var g = new byte[32];
        W64(g, 0x10, longMode ? 0x00AF_9A00_0000_FFFFUL : 0x00CF_9A00_0000_FFFFUL);
        W64(g, 0x18, 0x00CF_9200_0000_FFFFUL);
        return g;
    }

    static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);
    static void W32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
    static void W64(byte[] b, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
}
