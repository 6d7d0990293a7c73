using System.Buffers.Binary;
using System.Text;
using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Loaders;

namespace DynaSmp.Tests.Loaders;

public class MultibootLoaderTests
{
    const ulong Ram = 4 << 20;

    static uint R32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ulong R64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);

    static string CString(GuestRam ram, uint addr)
    {
        var s = ram.Span(addr, 256);
        return Encoding.UTF8.GetString(s[..s.IndexOf((byte)0)]);
    }

    [Fact]
    public void Elf32_kernel_loads_at_its_physical_addresses()
    {
        byte[] image = new MultibootElf().Build();
        var plan = MultibootLoader.Plan(image, Ram, "console=ttyS0 smp=2");
        Assert.Equal(MultibootImageFormat.Elf32, plan.Format);
        Assert.Equal(0x100u, plan.HeaderOffset);
        Assert.Empty(plan.Warnings);
        Assert.Equal(2, plan.Segments.Count);
        Assert.Equal(0x100000UL, plan.Segments[0].PhysicalAddress);
        Assert.Equal((ulong)MultibootElf.TextSize, plan.Segments[0].MemorySize);
        Assert.Equal(0x101000UL, plan.Segments[1].PhysicalAddress);
        Assert.Equal(0x1000UL, plan.Segments[1].MemorySize);
        Assert.Equal(0x10000Cu, plan.EntryPoint);

        using var ram = new GuestRam(Ram);
        ram.Span(0x101000, 0x1000).Fill(0xCC); // stale contents must be replaced by BSS zeros
        var boot = plan.Apply(ram);

        Assert.Equal(0x2BADB002u, boot.Eax);
        Assert.Equal(0x102000u, boot.Ebx); // the first page after the data segment's BSS
        Assert.Equal(plan.InfoAddress, boot.Ebx);
        Assert.Equal(0x10000Cu, boot.Eip);
        Assert.Equal(image.AsSpan(0x100, MultibootElf.TextSize).ToArray(), ram.Span(0x100000, MultibootElf.TextSize).ToArray());
        Assert.Equal(MultibootElf.Code, ram.Span(0x10000C, 4).ToArray());
        Assert.Equal(MultibootElf.DataBytes, ram.Span(0x101000, 16).ToArray());
        Assert.True(ram.Span(0x101010, 0x1000 - 0x10).ToArray().All(b => b == 0));
    }

    [Fact]
    public void Info_structure_has_every_field_the_loader_sets()
    {
        var plan = MultibootLoader.Plan(new MultibootElf().Build(), Ram, "console=ttyS0 smp=2");
        using var ram = new GuestRam(Ram);
        var boot = plan.Apply(ram);
        var mbi = ram.Span(boot.Ebx, 88);

        Assert.Equal((1u << 0) | (1u << 2) | (1u << 6) | (1u << 9), R32(mbi, 0)); // mem, cmdline, mmap, boot_loader_name
        Assert.Equal(640u, R32(mbi, 4));                              // mem_lower, KiB
        Assert.Equal((uint)((Ram - 0x100000) / 1024), R32(mbi, 8));   // mem_upper, KiB from 1 MiB
        Assert.Equal("console=ttyS0 smp=2", CString(ram, R32(mbi, 16)));
        Assert.Equal(plan.CommandLineAddress, R32(mbi, 16));
        Assert.Equal("DynaSmp", CString(ram, R32(mbi, 64)));
        // Fields whose flag bit is clear stay zero: boot_device, mods, syms, drives, config, apm, vbe.
        foreach (var (from, to) in new[] { (12, 16), (20, 44), (52, 64), (68, 88) })
            Assert.True(mbi[from..to].ToArray().All(b => b == 0), $"bytes {from}..{to} not zero");

        uint mmapLength = R32(mbi, 44), mmapAddr = R32(mbi, 48);
        Assert.Equal(72u, mmapLength);
        Assert.Equal(plan.MemoryMapLength, mmapLength);
        Assert.True(mmapAddr >= plan.InfoAreaStart && mmapAddr + mmapLength <= plan.InfoAreaEnd);
        var mmap = ram.Span(mmapAddr, (int)mmapLength);
        var expected = new (ulong Base, ulong Length, uint Type)[]
        {
            (0, 0xA0000, 1),
            (0xA0000, 0x60000, 2),
            (0x100000, Ram - 0x100000, 1),
        };
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(20u, R32(mmap, i * 24));               // size, excluding itself
            Assert.Equal(expected[i].Base, R64(mmap, i * 24 + 4));
            Assert.Equal(expected[i].Length, R64(mmap, i * 24 + 12));
            Assert.Equal(expected[i].Type, R32(mmap, i * 24 + 20));
        }
    }

    [Fact]
    public void Memory_map_skips_the_apic_window_for_large_ram()
    {
        const ulong big = 5UL << 30;
        var plan = MultibootLoader.Plan(new MultibootElf().Build(), big);
        var area = plan.InfoArea.Span;
        Assert.Equal((0xFEC0_0000u - 0x100000u) / 1024, R32(area, 8));
        Assert.Equal(5u * 24, plan.MemoryMapLength);
        var mmap = area[(int)(plan.MemoryMapAddress - plan.InfoAreaStart)..];
        Assert.Equal(0xFEC0_0000UL - 0x100000, R64(mmap, 2 * 24 + 12));
        Assert.Equal(0xFEC0_0000UL, R64(mmap, 3 * 24 + 4));
        Assert.Equal(2u, R32(mmap, 3 * 24 + 20));
        Assert.Equal(1UL << 32, R64(mmap, 4 * 24 + 4));
        Assert.Equal(big - (1UL << 32), R64(mmap, 4 * 24 + 12));
        Assert.Equal(1u, R32(mmap, 4 * 24 + 20));
    }

    [Fact]
    public void Empty_command_line_is_an_empty_string()
    {
        var plan = MultibootLoader.Plan(new MultibootElf().Build(), Ram);
        using var ram = new GuestRam(Ram);
        plan.Apply(ram);
        Assert.Equal("", CString(ram, plan.CommandLineAddress));
    }

    [Fact]
    public void Virtual_entry_point_is_translated_to_physical()
    {
        var elf = new MultibootElf { TextVaddr = 0xC010_0000, DataVaddr = 0xC010_1000, Entry = 0xC010_000C };
        var plan = MultibootLoader.Plan(elf.Build(), Ram);
        Assert.Equal(0x10000Cu, plan.EntryPoint);
        Assert.Equal(0x100000UL, plan.Segments[0].PhysicalAddress);
    }

    [Fact]
    public void Address_fields_kludge_loads_a_flat_image()
    {
        byte[] image = new MultibootAout().Build();
        var plan = MultibootLoader.Plan(image, Ram);
        Assert.Equal(MultibootImageFormat.AoutKludge, plan.Format);
        var seg = Assert.Single(plan.Segments);
        Assert.Equal(0x200000UL, seg.PhysicalAddress);
        Assert.Equal(0x40, seg.Data.Length);
        Assert.Equal(0x3000UL, seg.MemorySize);
        Assert.Equal(0x200030u, plan.EntryPoint);

        using var ram = new GuestRam(Ram);
        ram.Span(0x200040, 0x100).Fill(0xCC);
        var boot = plan.Apply(ram);
        Assert.Equal(0x200030u, boot.Eip);
        Assert.Equal(image.AsSpan(0, 0x40).ToArray(), ram.Span(0x200000, 0x40).ToArray()); // header_addr - load_addr = header offset
        Assert.True(ram.Span(0x200040, 0x3000 - 0x40).ToArray().All(b => b == 0));
    }

    [Fact]
    public void Address_fields_with_zero_load_end_take_the_rest_of_the_file()
    {
        var plan = MultibootLoader.Plan(new MultibootAout { LoadEndAddr = 0, BssEndAddr = 0 }.Build(), Ram);
        Assert.Equal(MultibootAout.FileSize, plan.Segments[0].Data.Length);
        Assert.Equal((ulong)MultibootAout.FileSize, plan.Segments[0].MemorySize);
    }

    [Fact]
    public void Video_mode_request_is_ignored_with_a_warning()
    {
        var plan = MultibootLoader.Plan(new MultibootElf { MbFlags = 0x7 }.Build(), Ram);
        Assert.Contains(plan.Warnings, w => w.Contains("video mode"));
    }

    [Fact]
    public void Boot_state_constants_follow_the_machine_state_section()
    {
        Assert.Equal(0x2BADB002u, MultibootBootState.BootloaderMagic);
        Assert.Equal(1UL, MultibootBootState.Cr0 & 1);            // PE
        Assert.Equal(0UL, MultibootBootState.Cr0 & 0x8000_0000);  // PG
        Assert.Equal(0u, MultibootBootState.Eflags & 0x0002_0200); // VM, IF
    }

    public static TheoryData<string, byte[], string> BadImages()
    {
        var d = new TheoryData<string, byte[], string>();
        byte[] elf = new MultibootElf().Build();
        d.Add("empty", Array.Empty<byte>(), "empty (0 bytes)");
        d.Add("no header", new byte[9000], "no Multiboot header");
        var late = new byte[9000];
        MultibootElf.W32(late, 8192, 0x1BADB002); MultibootElf.W32(late, 8196, 0); MultibootElf.W32(late, 8200, 0xE4524FFE);
        d.Add("header past 8 KiB", late, "no Multiboot header");
        d.Add("bad checksum", new MultibootElf { ChecksumDelta = 1 }.Build(), "bad checksum");
        d.Add("unsupported flag", new MultibootElf { MbFlags = 0x0B }.Build(), "bits 3");
        d.Add("truncated segment", elf[..0x168], "truncated");
        var shortElf = new byte[40]; // ELF signature and class, a Multiboot header at 16, but no room for the 52-byte ELF header
        shortElf[0] = 0x7F; shortElf[1] = (byte)'E'; shortElf[2] = (byte)'L'; shortElf[3] = (byte)'F'; shortElf[4] = 1;
        MultibootElf.W32(shortElf, 16, 0x1BADB002); MultibootElf.W32(shortElf, 24, 0xE4524FFE);
        d.Add("truncated ELF header", shortElf, "ELF header needs 52 bytes");
        d.Add("ELF64", new MultibootElf { Class = 2 }.Build(), "64-bit ELF");
        d.Add("ELF64 mentions QEMU", new MultibootElf { Class = 2 }.Build(), "QEMU refuses");
        d.Add("x86-64 machine", new MultibootElf { Machine = 62 }.Build(), "x86-64");
        d.Add("big-endian", new MultibootElf { DataEncoding = 2 }.Build(), "little-endian");
        var notElf = new MultibootElf().Build(); notElf[1] = (byte)'X';
        d.Add("not ELF", notElf, "ELF signature");
        d.Add("no phdrs", new MultibootElf { Phnum = 0 }.Build(), "no program headers");
        d.Add("no PT_LOAD", new MultibootElf { TextType = 4, DataType = 4 }.Build(), "no loadable");
        d.Add("phdrs past end", new MultibootElf { Phnum = 20 }.Build(), "truncated");
        d.Add("segment outside RAM", new MultibootElf { DataPaddr = 0x3FF800 }.Build(), "outside guest RAM");
        d.Add("entry outside RAM", new MultibootElf { Entry = 0x800000 }.Build(), "entry point 0x00800000 is outside guest RAM");
        d.Add("entry outside segments", new MultibootElf { Entry = 0x200000 }.Build(), "not inside any loaded segment");
        d.Add("aout truncated header", new MultibootAout().Build()[..0x28], "ends before those fields");
        d.Add("aout load_end past file", new MultibootAout { LoadEndAddr = 0x200100 }.Build(), "truncated");
        d.Add("aout header below load", new MultibootAout { HeaderAddr = 0x1FFFF0 }.Build(), "header_addr");
        d.Add("aout load before file", new MultibootAout { LoadAddr = 0x1FFF00 }.Build(), "before the file");
        d.Add("aout load_end below load", new MultibootAout { LoadEndAddr = 0x100000 }.Build(), "load_end_addr");
        d.Add("aout bss below end", new MultibootAout { BssEndAddr = 0x200020 }.Build(), "bss_end_addr");
        d.Add("aout empty", new MultibootAout { LoadEndAddr = 0x200000, BssEndAddr = 0, EntryAddr = 0x200000 }.Build(), "empty");
        d.Add("aout outside RAM", new MultibootAout { BssEndAddr = 0x500000 }.Build(), "outside guest RAM");
        d.Add("aout entry in no segment", new MultibootAout { EntryAddr = 0x9000 }.Build(), "not inside any loaded segment");
        return d;
    }

    [Theory, MemberData(nameof(BadImages))]
    public void Bad_images_are_refused_with_a_specific_message(string name, byte[] image, string expected)
    {
        var ex = Assert.Throws<MultibootImageException>(() => MultibootLoader.Plan(image, Ram));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{name}: \"{ex.Message}\" lacks \"{expected}\"");
    }

    [Fact]
    public void Bad_arguments_are_argument_exceptions()
    {
        byte[] elf = new MultibootElf().Build();
        Assert.Throws<ArgumentOutOfRangeException>(() => MultibootLoader.Plan(elf, 512 * 1024));
        Assert.Throws<ArgumentException>(() => MultibootLoader.Plan(elf, Ram, new string('x', MultibootLoader.MaxCommandLineBytes + 1)));
        Assert.Throws<ArgumentException>(() => MultibootLoader.Plan(elf, Ram, "a\0b"));
        MultibootLoader.Plan(elf, Ram, new string('x', MultibootLoader.MaxCommandLineBytes)); // the limit itself fits
    }

    [Fact]
    public void IsMultiboot_recognises_the_header()
    {
        Assert.True(MultibootLoader.IsMultiboot(new MultibootElf().Build()));
        Assert.False(MultibootLoader.IsMultiboot(new MultibootElf { ChecksumDelta = 1 }.Build()));
    }
}
