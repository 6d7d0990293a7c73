using DynaSmp.Jit.Memory;

namespace DynaSmp.Tests.Memory;

/// <summary>Guest RAM backed by transparent huge pages (what QEMU does for all guest RAM; DynaSmp for Linux guests): a
/// 2 MiB-aligned mapping advised MADV_HUGEPAGE, that behaves as RAM in every other way.</summary>
public unsafe class GuestRamHugePageTests
{
    /// <summary>The host offers THP when the kernel has the sysfs knob and does not say "never".</summary>
    internal static bool HostOffersThp =>
        OperatingSystem.IsLinux() && File.Exists("/sys/kernel/mm/transparent_hugepage/enabled")
        && !File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled").Contains("[never]");

    /// <summary>The VmFlags line of the host mapping that holds <paramref name="address"/> (/proc/self/smaps).</summary>
    static string? VmFlagsOf(ulong address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out ulong lo)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber, null, out ulong hi))
                inside = address >= lo && address < hi;
            else if (inside && line.StartsWith("VmFlags:", StringComparison.Ordinal)) return line;
        }
        return null;
    }

    [Fact]
    public void Huge_page_RAM_is_2_MiB_aligned_advised_and_behaves_as_RAM()
    {
        using var ram = new GuestRam(8 << 20, hugePages: true);
        Assert.True(ram.Span(0, 4096).IndexOfAnyExcept((byte)0) < 0);
        ram.Span(0x1F_FFFC, 8).Fill(0x5A); // across a 2 MiB boundary
        ram.Span(ram.Size - 1, 1)[0] = 0xA5;
        Assert.Equal(0x5A, ram.Span(0x20_0003, 1)[0]);
        Assert.Equal(0xA5, ram.Span(ram.Size - 1, 1)[0]);
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal(0UL, (ulong)ram.Base % (2UL << 20));
        Assert.Equal(HostOffersThp, ram.HugePages);
        // "hg": the mapping carries MADV_HUGEPAGE; the first and the last byte are in it (nothing left unaligned outside).
        if (Directory.Exists("/sys/kernel/mm/transparent_hugepage"))
        {
            Assert.Contains(" hg", VmFlagsOf((ulong)ram.Base));
            Assert.Contains(" hg", VmFlagsOf((ulong)ram.Base + ram.Size - 1));
        }
    }

    [Fact]
    public void Ordinary_RAM_is_not_advised()
    {
        using var ram = new GuestRam(4 << 20);
        Assert.False(ram.HugePages);
        if (!OperatingSystem.IsLinux()) return;
        ram.Span(0, 1)[0] = 1;
        Assert.DoesNotContain(" hg", VmFlagsOf((ulong)ram.Base) ?? "");
    }

    [Fact]
    public void A_file_maps_copy_on_write_into_huge_page_RAM()
    {
        using var dir = new DynaSmp.Tests.Hostile.DynasmpProcess.TempDir();
        string file = dir.Write("ram.bin", Enumerable.Range(0, 2 * 4096).Select(k => unchecked((byte)(k * 3 + 1))).ToArray());
        using var handle = File.OpenHandle(file);
        using var ram = new GuestRam(4 << 20, hugePages: true);
        if (!OperatingSystem.IsLinux()) return;
        Assert.True(ram.TryMapFile(0x20_0000, handle, 0, 2 * 4096));
        Assert.Equal(unchecked((byte)(4096 * 3 + 1)), ram.Span(0x20_1000, 1)[0]);
        ram.Span(0x20_0000, 1)[0] = 0x77;
        Assert.Equal(1, File.ReadAllBytes(file)[0]); // private
        ram.Span(0x1F_F000, 1)[0] = 9;                // the anonymous RAM around it is still there
        Assert.Equal(9, ram.Span(0x1F_F000, 1)[0]);
    }
}
