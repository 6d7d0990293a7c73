using System.Buffers.Binary;
using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Loaders;

namespace DynaSmp.Tests.Loaders;

/// <summary>Where the loader puts the boot information: never on a loaded byte, only in usable RAM, and a clear
/// error when the image leaves no page for it.</summary>
public class MultibootInfoPlacementTests
{
    const ulong Ram = 4 << 20;
    const uint Page = 0x1000;

    static MultibootAout Aout(uint load, uint bssEnd) =>
        new() { HeaderAddr = load + 0x10, LoadAddr = load, LoadEndAddr = load + 0x40, BssEndAddr = bssEnd, EntryAddr = load + 0x30 };

    static MultibootElf ElfAt(uint text, uint data, uint dataMemsz = 0x1000) =>
        new() { TextPaddr = text, TextVaddr = text, Entry = text + 12, DataPaddr = data, DataVaddr = data, DataMemsz = dataMemsz };

    /// <summary>Invariants every plan keeps; the fuzz tests check them too.</summary>
    internal static void AssertInfoAreaIsFree(MultibootLoadPlan plan, string what = "")
    {
        uint start = plan.InfoAreaStart, end = plan.InfoAreaEnd;
        Assert.True(start % Page == 0 && end - start == Page, $"{what}: info area [0x{start:x}, 0x{end:x}) is not one page");
        Assert.Equal((int)(end - start), plan.InfoArea.Length);
        bool low = start >= 0x1000 && end <= 0xA0000;
        bool high = start >= 0x100000 && end <= Math.Min(plan.RamSize, 0xFEC0_0000UL);
        Assert.True(low || high, $"{what}: info area [0x{start:x}, 0x{end:x}) is not usable RAM ({plan.RamSize:x} bytes)");
        foreach (var s in plan.Segments)
            Assert.True(s.End <= start || s.PhysicalAddress >= end,
                $"{what}: info area [0x{start:x}, 0x{end:x}) overlaps segment [0x{s.PhysicalAddress:x}, 0x{s.End:x})");

        // Everything the info structure points at lies inside the area.
        var mbi = plan.InfoArea.Span;
        uint cmdline = R32(mbi, 16), mmap = R32(mbi, 48), mmapLength = R32(mbi, 44), name = R32(mbi, 64);
        Assert.Equal(start, plan.InfoAddress);
        Assert.Equal(plan.CommandLineAddress, cmdline);
        Assert.True(cmdline >= start && cmdline < end && name >= start && name < end, what);
        Assert.True(mmap >= start && mmap + mmapLength <= end, what);
    }

    static uint R32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);

    public static TheoryData<string, byte[], ulong, uint> Placements() => new()
    {
        // Linked at 0x8000: the data segment covers the old fixed page 0x9000, which used to be refused.
        { "ELF at 0x8000", ElfAt(0x8000, 0x8800).Build(), Ram, 0xA000 },
        { "ELF at 0x8000 in 1 MiB of RAM", ElfAt(0x8000, 0x8800).Build(), 1 << 20, 0xA000 },
        { "ELF at 1 MiB", new MultibootElf().Build(), Ram, 0x102000 },
        { "ELF at 1 MiB with data on 0x9800", ElfAt(0x100000, 0x9800).Build(), Ram, 0x101000 },
        // bss_end_addr around a page boundary: the first whole page after it.
        { "bss ends 1 byte before a page", Aout(0x200000, 0x202FFF).Build(), Ram, 0x203000 },
        { "bss ends on a page", Aout(0x200000, 0x203000).Build(), Ram, 0x203000 },
        { "bss ends 1 byte past a page", Aout(0x200000, 0x203001).Build(), Ram, 0x204000 },
        { "image ends one page before RAM does", Aout(0x1000, 0x3FF000).Build(), Ram, 0x3FF000 },
        // No page after the image: the lowest free page instead.
        { "image up to the end of RAM", Aout(0x100000, (uint)Ram).Build(), Ram, 0x1000 },
        { "image into the last page of RAM", Aout(0x100000, (uint)Ram - 0x800).Build(), Ram, 0x1000 },
        { "low image whose next page is the VGA hole", Aout(0x8000, 0x9F800).Build(), Ram, 0x1000 },
        { "low image from 0x1000 up to the VGA hole", Aout(0x1000, 0x9F800).Build(), Ram, 0x100000 },
        { "image over [0x1000, 0x3000)", Aout(0x1000, 0x3000).Build(), Ram, 0x3000 },
        // Low memory and the last page taken: the gap between the two segments.
        { "ELF with a gap between its segments", ElfAt(0x3FF000, 0x1000, 0x1FE000).Build(), Ram, 0x1FF000 },
    };

    [Theory, MemberData(nameof(Placements))]
    public void Info_area_goes_where_no_loaded_byte_is(string name, byte[] image, ulong ramSize, uint expectedStart)
    {
        var plan = MultibootLoader.Plan(image, ramSize, "console=ttyS0");
        Assert.True(plan.InfoAreaStart == expectedStart, $"{name}: info area at 0x{plan.InfoAreaStart:x}, expected 0x{expectedStart:x}");
        AssertInfoAreaIsFree(plan, name);

        // Loaded for real over stale RAM: every segment byte is the image's (BSS zero) and the info area is intact.
        using var ram = new GuestRam(ramSize);
        ram.Span(0, (int)ramSize).Fill(0xCC);
        var boot = plan.Apply(ram);
        Assert.Equal(plan.InfoAddress, boot.Ebx);
        foreach (var s in plan.Segments)
        {
            Assert.True(ram.Span(s.PhysicalAddress, s.Data.Length).SequenceEqual(s.Data.Span), $"{name}: segment at 0x{s.PhysicalAddress:x}");
            Assert.True(ram.Span(s.PhysicalAddress + (ulong)s.Data.Length, (int)(s.MemorySize - (ulong)s.Data.Length)).IndexOfAnyExcept((byte)0) < 0,
                $"{name}: BSS of the segment at 0x{s.PhysicalAddress:x} is not zero");
        }
        Assert.True(ram.Span(plan.InfoAreaStart, (int)Page).SequenceEqual(plan.InfoArea.Span), name);
        Assert.Equal("console=ttyS0"u8.ToArray(), ram.Span(plan.CommandLineAddress, 14)[..13].ToArray());
    }

    [Fact]
    public void Longest_command_line_fills_the_info_page_of_a_kernel_at_0x8000()
    {
        string longest = new('c', MultibootLoader.MaxCommandLineBytes);
        var plan = MultibootLoader.Plan(ElfAt(0x8000, 0x8800).Build(), Ram, longest);
        AssertInfoAreaIsFree(plan);
        Assert.Equal(plan.InfoAreaEnd, plan.CommandLineAddress + (uint)longest.Length + 1); // the NUL is the page's last byte
        using var ram = new GuestRam(Ram);
        plan.Apply(ram);
        Assert.Equal((byte)'c', ram.Span(plan.CommandLineAddress + (uint)longest.Length - 1, 1)[0]);
        Assert.Equal(0, ram.Span(plan.InfoAreaEnd - 1, 1)[0]);

        var tooLong = Assert.Throws<ArgumentException>(() => MultibootLoader.Plan(ElfAt(0x8000, 0x8800).Build(), Ram, longest + "c"));
        Assert.Contains($"at most {MultibootLoader.MaxCommandLineBytes} fit", tooLong.Message);
    }

    public static TheoryData<string, byte[], ulong> NoRoom() => new()
    {
        // Low usable RAM [0x1000, 0xA0000) taken, and 1 MiB of RAM has nothing above the hole.
        { "1 MiB of RAM, low memory full", Aout(0x1000, 0xA0000).Build(), 1 << 20 },
        // Low memory taken, and less than a page left between the image end and the end of RAM.
        { "image ends 0x800 before RAM does", Aout(0x1000, (uint)Ram - 0x800).Build(), Ram },
        { "image ends 1 byte before RAM does", Aout(0x1000, (uint)Ram - 1).Build(), Ram },
        { "image ends with RAM", Aout(0x1000, (uint)Ram).Build(), Ram },
        // RAM past the IOAPIC window: the page after the image would be MMIO, and the RAM above 4 GiB is out of reach.
        { "image up to the IOAPIC window", Aout(0x1000, 0xFEC0_0000).Build(), 5UL << 30 },
    };

    [Theory, MemberData(nameof(NoRoom))]
    public void No_free_page_is_a_clear_image_error(string name, byte[] image, ulong ramSize)
    {
        var ex = Assert.Throws<MultibootImageException>(() => MultibootLoader.Plan(image, ramSize));
        Assert.True(ex.Message.Contains("no room for the Multiboot boot information", StringComparison.Ordinal), $"{name}: {ex.Message}");
        Assert.Contains("[0x1000, 0x", ex.Message); // names what the kernel occupies
    }

    [Fact]
    public void Info_area_stays_below_the_ioapic_window_with_large_ram()
    {
        // The image ends just below the IOAPIC window, so the page after it is MMIO: the lowest free page instead.
        var plan = MultibootLoader.Plan(Aout(0x100000, 0xFEBF_F800).Build(), 5UL << 30);
        Assert.Equal(0x1000u, plan.InfoAreaStart);
        AssertInfoAreaIsFree(plan);

        plan = MultibootLoader.Plan(Aout(0x100000, 0xFEBF_F000).Build(), 5UL << 30);
        Assert.Equal(0xFEBF_F000u, plan.InfoAreaStart); // the last page below the window is still RAM
        AssertInfoAreaIsFree(plan);
    }
}
