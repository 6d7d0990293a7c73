using DynaSmp.Jit.Memory;

namespace DynaSmp.Machine.Loaders;

/// <summary>
/// What <see cref="MultibootLoader.Plan"/> decided: which bytes go where in guest-physical memory, where the kernel
/// starts, and the Multiboot information area (info structure, memory map, boot loader name, command line), already
/// laid out as bytes. Nothing touches guest memory until <see cref="Apply"/>.
/// </summary>
public sealed class MultibootLoadPlan
{
    internal MultibootLoadPlan(MultibootImageFormat format, uint headerOffset, uint headerFlags, IReadOnlyList<LoadSegment> segments,
        uint entryPoint, ulong ramSize, uint infoAreaStart, byte[] infoArea, uint memoryMapLength, IReadOnlyList<string> warnings)
    {
        Format = format;
        HeaderOffset = headerOffset;
        HeaderFlags = headerFlags;
        Segments = segments;
        EntryPoint = entryPoint;
        RamSize = ramSize;
        InfoAreaStart = infoAreaStart;
        InfoArea = infoArea;
        MemoryMapLength = memoryMapLength;
        Warnings = warnings;
    }

    public MultibootImageFormat Format { get; }
    /// <summary>File offset of the Multiboot header.</summary>
    public uint HeaderOffset { get; }
    public uint HeaderFlags { get; }
    public IReadOnlyList<LoadSegment> Segments { get; }
    /// <summary>Physical address the BSP starts at (EIP).</summary>
    public uint EntryPoint { get; }
    public ulong RamSize { get; }

    /// <summary>
    /// Guest-physical [InfoAreaStart, InfoAreaEnd) holds everything the loader writes besides the kernel: one page
    /// that no segment touches (see <see cref="MultibootLoader"/> for where it goes).
    /// </summary>
    public uint InfoAreaStart { get; }
    public uint InfoAreaEnd => InfoAreaStart + MultibootLoader.InfoAreaSize;
    /// <summary>The multiboot_info structure; EBX at entry.</summary>
    public uint InfoAddress => InfoAreaStart + MultibootLoader.InfoOffset;
    public uint MemoryMapAddress => InfoAreaStart + MultibootLoader.MemoryMapOffset;
    public uint BootLoaderNameAddress => InfoAreaStart + MultibootLoader.BootLoaderNameOffset;
    public uint CommandLineAddress => InfoAreaStart + MultibootLoader.CommandLineOffset;
    /// <summary>Bytes of memory map (24 per entry: size, base_addr, length, type).</summary>
    public uint MemoryMapLength { get; }

    /// <summary>The bytes of [InfoAreaStart, InfoAreaEnd), unused parts zero.</summary>
    public ReadOnlyMemory<byte> InfoArea { get; }

    /// <summary>Things the loader chose to ignore (e.g. a requested video mode), for the user to see.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>
    /// Copies the segments (zero-filling their BSS) and the info area into <paramref name="ram"/> and returns the BSP's
    /// initial state. Host writes do not invalidate translations: apply before the first instruction runs.
    /// </summary>
    public MultibootBootState Apply(GuestRam ram)
    {
        ArgumentNullException.ThrowIfNull(ram);
        if (ram.Size < RamSize) throw new ArgumentException($"the plan was made for {RamSize} bytes of RAM but the guest has {ram.Size}", nameof(ram));
        foreach (var seg in Segments)
        {
            ram.Write(seg.PhysicalAddress, seg.Data.Span);
            ulong zeroAt = seg.PhysicalAddress + (ulong)seg.Data.Length, zeroEnd = seg.End;
            while (zeroAt < zeroEnd)
            {
                int chunk = (int)Math.Min(zeroEnd - zeroAt, 1u << 30);
                ram.Span(zeroAt, chunk).Clear();
                zeroAt += (ulong)chunk;
            }
        }
        ram.Write(InfoAreaStart, InfoArea.Span);
        return new MultibootBootState(MultibootBootState.BootloaderMagic, InfoAddress, EntryPoint);
    }
}
