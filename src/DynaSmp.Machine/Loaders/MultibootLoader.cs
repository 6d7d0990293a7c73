using DynaSmp.Machine.Firmware;
using System.Buffers.Binary;
using System.Text;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// Multiboot v1 (specification 0.6.96) kernel loader, following what QEMU's -kernel does (hw/i386/multiboot.c) where
/// the specification leaves a choice:
/// <list type="bullet">
/// <item>the header is the first 4-byte aligned 0x1BADB002 whose magic + flags + checksum is 0 (mod 2^32) and that
/// lies wholly in the first 8192 bytes;</item>
/// <item>flags bit 16 set: load by the header's address fields (the "a.out kludge"), even for an ELF file;
/// otherwise the file must be ELF32 for EM_386 and its PT_LOAD segments load at p_paddr; the entry point is
/// e_entry, translated from virtual to physical when it lies in an executable segment whose p_vaddr and
/// p_paddr differ (QEMU's load_elf does the same); ELF64 is refused, as QEMU refuses x86-64 images;</item>
/// <item>flags bits 0 (page-align modules: there are no modules) and 1 (memory info: always given) are honoured;
/// bit 2 (video mode) is ignored with a warning, as QEMU does ("multiboot knows VBE. we don't."); any other
/// required bit (3-15) is refused, as section 3.1.2 says a boot loader must; optional bits 17-31 are ignored.</item>
/// </list>
/// The info structure, memory map, boot loader name and command line share one 4 KiB page that no loaded byte of the
/// kernel (segments with their BSS, or the a.out kludge range up to bss_end_addr) touches, so a kernel may link
/// anywhere in RAM, including below 1 MiB. The page is the first one after the image's highest end, where QEMU puts
/// its command lines, boot loader name and module list (QEMU keeps the info structure and memory map at 0x9000, which
/// a kernel loaded there would overwrite). When that page is not usable RAM (past the end of RAM or the start of the
/// IOAPIC window, or in the 640 KiB - 1 MiB hole), the lowest free page from 0x1000 up is taken instead.
/// </summary>
public static class MultibootLoader
{
    public const uint HeaderMagic = 0x1BADB002;
    public const int HeaderSearchLimit = 8192;

    public const uint FlagPageAlignModules = 1u << 0, FlagMemoryInfo = 1u << 1, FlagVideoMode = 1u << 2, FlagAddressFields = 1u << 16;

    // multiboot_info.flags bits this loader sets (section 3.3).
    public const uint InfoFlagMemory = 1u << 0, InfoFlagCmdline = 1u << 2, InfoFlagMmap = 1u << 6, InfoFlagBootLoaderName = 1u << 9;

    public const string BootLoaderName = "DynaSmp";

    internal const uint InfoAreaSize = 0x1000;
    internal const uint InfoOffset = 0x000, MemoryMapOffset = 0x060, BootLoaderNameOffset = 0x100, CommandLineOffset = 0x120;
    /// <summary>The command line and its NUL end the one info page, so it is the same wherever the page goes.</summary>
    public const int MaxCommandLineBytes = (int)(InfoAreaSize - CommandLineOffset) - 1;

    // Page 0 holds the real-mode IVT and BDA, and an info address of 0 would read as a null pointer.
    const ulong LowInfoFloor = 0x1000;
    const ulong LowMemoryTop = PcMemoryMap.LowMemoryTop, HighMemoryStart = PcMemoryMap.HighMemoryStart;

    const int Elf32HeaderSize = 52, Elf32PhdrSize = 32;
    const byte ElfClass32 = 1, ElfClass64 = 2, ElfDataLittle = 1;
    const ushort EmI386 = 3, EmX86_64 = 62;
    const uint PtLoad = 1, PfX = 1;

    /// <summary>True when <paramref name="image"/> has a valid Multiboot v1 header where the loader looks for one.</summary>
    public static bool IsMultiboot(ReadOnlySpan<byte> image) => FindHeader(image, out _, out _) >= 0;

    /// <summary>
    /// Validates <paramref name="image"/> and plans its load into <paramref name="ramSize"/> bytes of RAM.
    /// Throws <see cref="MultibootImageException"/> for every problem with the image; <see cref="ArgumentException"/>
    /// only for bad arguments (RAM below 1 MiB, a command line that is too long or contains NUL).
    /// </summary>
    public static MultibootLoadPlan Plan(ReadOnlyMemory<byte> image, ulong ramSize, string commandLine = "")
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        if (ramSize < HighMemoryStart) throw new ArgumentOutOfRangeException(nameof(ramSize), "Multiboot needs at least 1 MiB of RAM");
        byte[] cmdline = Encoding.UTF8.GetBytes(commandLine);
        if (cmdline.Length > MaxCommandLineBytes) throw new ArgumentException($"the kernel command line is {cmdline.Length} bytes; at most {MaxCommandLineBytes} fit", nameof(commandLine));
        if (Array.IndexOf(cmdline, (byte)0) >= 0) throw new ArgumentException("the kernel command line contains a NUL character", nameof(commandLine));

        ReadOnlySpan<byte> file = image.Span;
        if (file.Length == 0) throw new MultibootImageException("The kernel image is empty (0 bytes).");

        int off = FindHeader(file, out uint flags, out int badChecksumAt);
        if (off < 0)
        {
            if (badChecksumAt >= 0)
            {
                uint m = U32(file, badChecksumAt), f = U32(file, badChecksumAt + 4), c = U32(file, badChecksumAt + 8);
                throw new MultibootImageException(
                    $"Not a valid Multiboot image: the Multiboot header at file offset 0x{badChecksumAt:x} has a bad checksum " +
                    $"(magic 0x{m:x8} + flags 0x{f:x8} + checksum 0x{c:x8} = 0x{unchecked(m + f + c):x8}, must be 0).");
            }
            throw new MultibootImageException(
                $"Not a Multiboot image: no Multiboot header (magic 0x{HeaderMagic:X8} at a 4-byte aligned offset) in the first {HeaderSearchLimit} bytes of the {file.Length}-byte file.");
        }

        var warnings = new List<string>();
        const uint understood = FlagPageAlignModules | FlagMemoryInfo | FlagVideoMode;
        uint unknownRequired = flags & 0xFFFF & ~understood;
        if (unknownRequired != 0)
            throw new MultibootImageException(
                $"The Multiboot header (flags 0x{flags:x8}) requires features this loader does not provide (bits {BitList(unknownRequired)}); " +
                "Multiboot 0.6.96 section 3.1.2 says a boot loader must refuse such a kernel.");
        if ((flags & FlagVideoMode) != 0)
            warnings.Add("The kernel asks for a video mode (Multiboot flags bit 2); it is ignored, as QEMU ignores it: no VBE/framebuffer information is given.");

        var segments = new List<LoadSegment>();
        uint entry;
        MultibootImageFormat format;
        if ((flags & FlagAddressFields) != 0)
        {
            format = MultibootImageFormat.AoutKludge;
            entry = PlanAddressFields(image, off, ramSize, segments);
        }
        else
        {
            format = MultibootImageFormat.Elf32;
            entry = PlanElf32(image, ramSize, segments);
        }

        if (entry >= ramSize)
            throw new MultibootImageException($"The kernel entry point 0x{entry:x8} is outside guest RAM ({Size(ramSize)}).");
        bool inSegment = false;
        foreach (var s in segments) inSegment |= entry >= s.PhysicalAddress && entry < s.End;
        if (!inSegment)
            throw new MultibootImageException($"The kernel entry point 0x{entry:x8} is not inside any loaded segment, so the CPU would start in empty memory.");

        uint infoStart = PlaceInfoArea(segments, ramSize);
        byte[] info = BuildInfoArea(infoStart, ramSize, cmdline, out uint mmapLength);
        return new MultibootLoadPlan(format, (uint)off, flags, segments, entry, ramSize, infoStart, info, mmapLength, warnings);
    }

    /// <summary>Offset of the first valid header, or -1 (then <paramref name="badChecksumAt"/> is the first magic seen, or -1).</summary>
    static int FindHeader(ReadOnlySpan<byte> file, out uint flags, out int badChecksumAt)
    {
        flags = 0;
        badChecksumAt = -1;
        int limit = Math.Min(file.Length, HeaderSearchLimit);
        for (int i = 0; i + 12 <= limit; i += 4)
        {
            if (U32(file, i) != HeaderMagic) continue;
            uint f = U32(file, i + 4), c = U32(file, i + 8);
            if (unchecked(HeaderMagic + f + c) == 0) { flags = f; return i; }
            if (badChecksumAt < 0) badChecksumAt = i;
        }
        return -1;
    }

    // Header fields 12..31 (section 3.1.3), valid when flags bit 16 is set.
    static uint PlanAddressFields(ReadOnlyMemory<byte> image, int off, ulong ramSize, List<LoadSegment> segments)
    {
        ReadOnlySpan<byte> file = image.Span;
        if (off + 32 > file.Length)
            throw new MultibootImageException(
                $"The image is truncated: the Multiboot header at file offset 0x{off:x} sets flags bit 16 (address fields), but the file ends before those fields (needs {off + 32} bytes, has {file.Length}).");
        uint headerAddr = U32(file, off + 12), loadAddr = U32(file, off + 16), loadEndAddr = U32(file, off + 20), bssEndAddr = U32(file, off + 24), entry = U32(file, off + 28);

        if (headerAddr < loadAddr)
            throw new MultibootImageException($"Invalid Multiboot address fields: header_addr 0x{headerAddr:x8} is below load_addr 0x{loadAddr:x8}.");
        ulong headerDelta = headerAddr - loadAddr;
        if (headerDelta > (ulong)off)
            throw new MultibootImageException(
                $"Invalid Multiboot address fields: header_addr - load_addr = 0x{headerDelta:x} but the header is only 0x{off:x} bytes into the file, so loading would start before the file does.");
        ulong textOffset = (ulong)off - headerDelta;

        ulong loadSize;
        if (loadEndAddr == 0)
        {
            loadSize = (ulong)file.Length - textOffset;
        }
        else
        {
            if (loadEndAddr < loadAddr)
                throw new MultibootImageException($"Invalid Multiboot address fields: load_end_addr 0x{loadEndAddr:x8} is below load_addr 0x{loadAddr:x8}.");
            loadSize = loadEndAddr - loadAddr;
            if (textOffset + loadSize > (ulong)file.Length)
                throw new MultibootImageException(
                    $"The image is truncated: load_end_addr asks for {loadSize} bytes from file offset 0x{textOffset:x}, but the file has only {file.Length} bytes.");
        }

        ulong memSize = loadSize;
        if (bssEndAddr != 0)
        {
            if (bssEndAddr < loadAddr + loadSize)
                throw new MultibootImageException($"Invalid Multiboot address fields: bss_end_addr 0x{bssEndAddr:x8} is below the end of the loaded text and data (0x{loadAddr + loadSize:x}).");
            memSize = bssEndAddr - loadAddr;
        }
        if (memSize == 0)
            throw new MultibootImageException("The kernel image is empty: the Multiboot address fields load 0 bytes and reserve no BSS.");

        CheckPlacement("The kernel image", loadAddr, memSize, ramSize);
        segments.Add(new LoadSegment(loadAddr, image.Slice((int)textOffset, (int)loadSize), memSize));
        return entry;
    }

    static uint PlanElf32(ReadOnlyMemory<byte> image, ulong ramSize, List<LoadSegment> segments)
    {
        ReadOnlySpan<byte> file = image.Span;
        if (file.Length < 4 || file[0] != 0x7F || file[1] != (byte)'E' || file[2] != (byte)'L' || file[3] != (byte)'F')
            throw new MultibootImageException(
                "The Multiboot header does not set flags bit 16 (address fields), so the kernel must be an ELF file, but it does not start with the ELF signature (7F 45 4C 46).");
        if (file.Length < 5)
            throw new MultibootImageException($"The image is truncated: the ELF header needs {Elf32HeaderSize} bytes but the file has {file.Length}.");
        if (file[4] == ElfClass64)
            throw new MultibootImageException(
                "The kernel is a 64-bit ELF file; Multiboot v1 boots 32-bit ELF (ELFCLASS32) kernels only, and QEMU refuses such images too " +
                "(\"Cannot load x86-64 image, give a 32bit one.\"). Link an ELF32 image (e.g. objcopy -O elf32-i386) that switches to long mode itself.");
        if (file[4] != ElfClass32)
            throw new MultibootImageException($"The ELF file has an invalid class byte (EI_CLASS = {file[4]}; 1 = 32-bit).");
        if (file.Length < Elf32HeaderSize)
            throw new MultibootImageException($"The image is truncated: the ELF header needs {Elf32HeaderSize} bytes but the file has {file.Length}.");
        if (file[5] != ElfDataLittle)
            throw new MultibootImageException($"The ELF file is not little-endian (EI_DATA = {file[5]}); x86 kernels are little-endian.");
        ushort machine = U16(file, 18);
        if (machine != EmI386)
            throw new MultibootImageException(
                $"The ELF file is for machine {machine}{(machine == EmX86_64 ? " (x86-64)" : "")}, not i386 (EM_386 = 3); Multiboot v1 loads 32-bit x86 kernels.");

        uint entry = U32(file, 24), phoff = U32(file, 28);
        ushort phentsize = U16(file, 42), phnum = U16(file, 44);
        if (phnum == 0)
            throw new MultibootImageException("The ELF file has no program headers, so there is nothing to load (is it an object file rather than a linked kernel?).");
        if (phentsize < Elf32PhdrSize)
            throw new MultibootImageException($"The ELF file's program header entries are {phentsize} bytes; ELF32 needs at least {Elf32PhdrSize}.");
        if ((ulong)phoff + (ulong)phnum * phentsize > (ulong)file.Length)
            throw new MultibootImageException(
                $"The image is truncated: its {phnum} ELF program headers at offset 0x{phoff:x} end past the end of the {file.Length}-byte file.");

        uint? physEntry = null;
        for (int n = 0; n < phnum; n++)
        {
            int ph = (int)(phoff + (uint)(n * phentsize));
            if (U32(file, ph) != PtLoad) continue;
            uint offset = U32(file, ph + 4), vaddr = U32(file, ph + 8), paddr = U32(file, ph + 12);
            uint filesz = U32(file, ph + 16), memsz = U32(file, ph + 20), pflags = U32(file, ph + 24);
            if (memsz == 0) continue;
            if (filesz > memsz)
                throw new MultibootImageException($"ELF segment {n} is malformed: its file size (0x{filesz:x}) exceeds its memory size (0x{memsz:x}).");
            if ((ulong)offset + filesz > (ulong)file.Length)
                throw new MultibootImageException(
                    $"The image is truncated: ELF segment {n} needs file bytes [0x{offset:x}, 0x{(ulong)offset + filesz:x}) but the file has only {file.Length} bytes.");
            CheckPlacement($"ELF segment {n}", paddr, memsz, ramSize);
            segments.Add(new LoadSegment(paddr, image.Slice((int)offset, (int)filesz), memsz));
            // e_entry is virtual; QEMU's load_elf moves it to the physical load address when it lies in the file
            // part of an executable segment loaded somewhere other than its virtual address.
            if (physEntry is null && vaddr != paddr && (pflags & PfX) != 0 && entry >= vaddr && (ulong)entry < (ulong)vaddr + filesz)
                physEntry = entry - vaddr + paddr;
        }
        if (segments.Count == 0)
            throw new MultibootImageException("The ELF file has no loadable (PT_LOAD) segments with a non-zero size: the kernel image is empty.");
        return physEntry ?? entry;
    }

    static void CheckPlacement(string what, ulong start, ulong size, ulong ramSize)
    {
        ulong end = start + size;
        if (end > ramSize)
            throw new MultibootImageException(
                $"{what} at [0x{start:x}, 0x{end:x}) lies outside guest RAM ({Size(ramSize)}); give the machine more memory or link the kernel lower.");
    }

    /// <summary>
    /// The page for the boot information: the first page after the image's highest end if it is usable RAM, else the
    /// lowest usable page no segment touches. Usable means [0x1000, 640 KiB) or [1 MiB, min(RAM, IOAPIC window)): the
    /// memory map calls the rest reserved or it is not RAM, and everything must stay below 4 GiB for the 32-bit fields.
    /// </summary>
    static uint PlaceInfoArea(List<LoadSegment> segments, ulong ramSize)
    {
        ulong highTop = Math.Min(ramSize, MachineInfo.IoApicBase);
        Span<(ulong Start, ulong End)> usable = [(LowInfoFloor, LowMemoryTop), (HighMemoryStart, highTop)];

        // The first page of [from, to) that lies wholly in usable RAM, or 0.
        static ulong FirstPage(ulong from, ulong to, ReadOnlySpan<(ulong Start, ulong End)> ranges)
        {
            foreach (var r in ranges)
            {
                ulong at = PageAlignUp(Math.Max(from, r.Start));
                if (at + InfoAreaSize <= Math.Min(to, r.End)) return at;
            }
            return 0;
        }

        // Every segment ends at or below imageEnd, so only usable RAM decides whether the page right after it will do.
        ulong imageEnd = 0;
        foreach (var s in segments) imageEnd = Math.Max(imageEnd, s.End);
        ulong after = PageAlignUp(imageEnd);
        ulong found = FirstPage(after, after + InfoAreaSize, usable);
        if (found != 0) return (uint)found;

        // Gaps between the segments, lowest first (sorted by start; a gap begins where everything before it ends).
        var sorted = segments.OrderBy(seg => seg.PhysicalAddress).ToList();
        ulong gapStart = 0;
        foreach (var s in sorted)
        {
            found = FirstPage(gapStart, s.PhysicalAddress, usable);
            if (found != 0) return (uint)found;
            gapStart = Math.Max(gapStart, s.End);
        }
        found = FirstPage(gapStart, ulong.MaxValue, usable); // above the image, past a hole the page after it fell in
        if (found != 0) return (uint)found;

        var covered = new StringBuilder();
        foreach (var s in sorted)
            covered.Append(covered.Length == 0 ? "" : ", ").Append($"[0x{s.PhysicalAddress:x}, 0x{s.End:x})");
        throw new MultibootImageException(
            $"There is no room for the Multiboot boot information (one free 4 KiB page for the info structure, memory map and command line): " +
            $"the kernel occupies {covered}, which leaves no page free in [0x{LowInfoFloor:x}, 0x{LowMemoryTop:x}) or [0x{HighMemoryStart:x}, 0x{highTop:x}) " +
            $"of the {Size(ramSize)} of guest RAM; give the machine more memory or make the kernel leave a page free.");
    }

    static ulong PageAlignUp(ulong address) => (address + InfoAreaSize - 1) & ~(ulong)(InfoAreaSize - 1);

    // The page at infoStart: multiboot_info (section 3.3), the memory map, the boot loader name, the command line.
    static byte[] BuildInfoArea(uint infoStart, ulong ramSize, byte[] cmdline, out uint mmapLength)
    {
        var area = new byte[InfoAreaSize];
        Span<byte> mbi = area.AsSpan((int)InfoOffset, 88);

        int n = 0;
        Span<byte> mmap = area.AsSpan((int)MemoryMapOffset, (int)(BootLoaderNameOffset - MemoryMapOffset));
        foreach (var e in PcMemoryMap.Build(ramSize)) AddRange(mmap, ref n, e.Start, e.Length, (uint)e.Type);
        ulong highTop = PcMemoryMap.HighRamTop(ramSize);
        mmapLength = (uint)(n * 24);

        // mem_upper: KiB from 1 MiB to the first hole above it (section 3.3).
        ulong memUpper = (highTop - HighMemoryStart) / 1024;
        W32(mbi, 0, InfoFlagMemory | InfoFlagCmdline | InfoFlagMmap | InfoFlagBootLoaderName);
        W32(mbi, 4, (uint)(LowMemoryTop / 1024));
        W32(mbi, 8, (uint)memUpper);
        W32(mbi, 16, infoStart + CommandLineOffset);
        W32(mbi, 44, mmapLength);
        W32(mbi, 48, infoStart + MemoryMapOffset);
        W32(mbi, 64, infoStart + BootLoaderNameOffset);

        Encoding.ASCII.GetBytes(BootLoaderName, area.AsSpan((int)BootLoaderNameOffset));
        cmdline.CopyTo(area.AsSpan((int)CommandLineOffset));
        return area;
    }

    // One memory map entry: u32 size (20, not counting itself), u64 base_addr, u64 length, u32 type (1 = RAM).
    static void AddRange(Span<byte> mmap, ref int n, ulong start, ulong length, uint type)
    {
        Span<byte> e = mmap.Slice(n * 24, 24);
        W32(e, 0, 20);
        BinaryPrimitives.WriteUInt64LittleEndian(e[4..], start);
        BinaryPrimitives.WriteUInt64LittleEndian(e[12..], length);
        W32(e, 20, type);
        n++;
    }

    static string BitList(uint bits)
    {
        var sb = new StringBuilder();
        for (int b = 0; b < 32; b++)
            if ((bits & (1u << b)) != 0) sb.Append(sb.Length == 0 ? "" : ", ").Append(b);
        return sb.ToString();
    }

    static string Size(ulong bytes) => bytes % (1 << 20) == 0 ? $"{bytes >> 20} MiB" : $"0x{bytes:x} bytes";

    static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ushort U16(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    static void W32(Span<byte> b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b[at..], v);
}
