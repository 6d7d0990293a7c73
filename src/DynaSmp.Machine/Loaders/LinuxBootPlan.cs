using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Firmware;

namespace DynaSmp.Machine.Loaders;

/// <summary>What <see cref="LinuxBootLoader.Plan"/> decided. <see cref="Apply"/> writes it into guest RAM together with
/// the firmware tables and puts the BSP at the kernel's entry as the boot protocol specifies.</summary>
public sealed class LinuxBootPlan
{
    internal LinuxBootPlan(ushort protocol, ulong kernelAddress, IReadOnlyList<LoadSegment> kernel, uint initSize, byte[] bootParams,
        byte[] commandLine, ReadOnlyMemory<byte> initrd, ulong initrdAddress, ulong entryPoint, bool entry64, ulong ramSize, string? guestDecompresses)
    {
        Protocol = protocol; KernelAddress = kernelAddress; Kernel = kernel; InitSize = initSize; BootParams = bootParams;
        CommandLine = commandLine; Initrd = initrd; InitrdAddress = initrdAddress; EntryPoint = entryPoint; Entry64 = entry64; RamSize = ramSize;
        GuestDecompressesBecause = guestDecompresses;
    }

    /// <summary>Boot protocol version from the header (0x020F = 2.15).</summary>
    public ushort Protocol { get; }
    /// <summary>Where the protected-mode kernel is loaded (code32_start).</summary>
    public ulong KernelAddress { get; }
    /// <summary>The protected-mode kernel at <see cref="KernelAddress"/>, or the host-decompressed vmlinux's segments.</summary>
    public IReadOnlyList<LoadSegment> Kernel { get; }
    /// <summary>True when the BSP enters a vmlinux the host decompressed (at startup_64), not the bzImage's decompressor.</summary>
    public bool HostDecompressed => GuestDecompressesBecause == null;
    /// <summary>Why the kernel's own decompressor runs in the guest; null when the host decompressed it.</summary>
    public string? GuestDecompressesBecause { get; }

    /// <summary>One line for the user: which way into <paramref name="kernel"/> this plan takes, and why.</summary>
    public string Describe(LinuxKernel kernel) =>
        HostDecompressed ? kernel.Describe() : LinuxKernel.GuestDecompressorRuns(GuestDecompressesBecause);
    /// <summary>Bytes the kernel needs from <see cref="KernelAddress"/> while it decompresses (init_size).</summary>
    public uint InitSize { get; }
    /// <summary>The zero page (struct boot_params) as written at <see cref="LinuxBootLoader.BootParamsAddress"/>.</summary>
    public byte[] BootParams { get; }
    public byte[] CommandLine { get; }
    public ReadOnlyMemory<byte> Initrd { get; }
    public ulong InitrdAddress { get; }
    /// <summary>The BSP's first RIP: code32_start + 0x200 for the 64-bit entry, code32_start for the 32-bit one, the
    /// vmlinux's startup_64 when the host decompressed it.</summary>
    public ulong EntryPoint { get; }
    public bool Entry64 { get; }
    public ulong RamSize { get; }

    /// <summary>Writes kernel, initrd, command line, zero page, ACPI and MP tables (and, for the 64-bit entry, identity
    /// page tables) and sets <paramref name="bsp"/> to the protocol's entry state: flat __BOOT_CS/__BOOT_DS from a
    /// loaded GDT, interrupts off, RSI (ESI) = boot_params; 64-bit mode with paging, or 32-bit protected mode without.</summary>
    public unsafe void Apply(GuestRam ram, CpuCore bsp, int cpus)
    {
        if (ram.Size < RamSize) throw new ArgumentException($"the plan was made for {RamSize} bytes of RAM but the guest has {ram.Size}", nameof(ram));
        foreach (var segment in Kernel)
        {
            KernelCache.WriteSegment(ram, segment.PhysicalAddress, segment.Data);
            // BSS: zero in case the RAM was used before (a reset re-runs the plan).
            for (ulong at = segment.PhysicalAddress + (ulong)segment.Data.Length; at < segment.End;)
            {
                int n = (int)Math.Min(segment.End - at, 1UL << 30);
                ram.Span(at, n).Clear();
                at += (ulong)n;
            }
        }
        ram.Write(LinuxBootLoader.CommandLineAddress, CommandLine);
        ram.Span(LinuxBootLoader.CommandLineAddress + (ulong)CommandLine.Length, 1)[0] = 0;
        if (Initrd.Length > 0) ram.Write(InitrdAddress, Initrd.Span);
        ram.Write(LinuxBootLoader.BootParamsAddress, BootParams);
        ram.Write(LinuxBootLoader.AcpiAddress, AcpiTables.Build(LinuxBootLoader.AcpiAddress, cpus));
        ram.Write(LinuxBootLoader.MpTableAddress, MpTable.Build(LinuxBootLoader.MpTableAddress, cpus));
        ram.Write(LinuxBootLoader.GdtAddress, LinuxBootLoader.BootGdt(Entry64));

        CpuState* s = bsp.State;
        if (Entry64)
        {
            ram.Write(LinuxBootLoader.PageTablesAddress, LinuxBootLoader.IdentityPageTables());
            bsp.SetFlat64(EntryPoint, 0);
            s->Cr4 |= Cr4.PAE;
            s->Cr3 = LinuxBootLoader.PageTablesAddress;
            s->Cr0 |= Cr0.PG;
            s->Cs = SegmentCache.Flat(0x10, 0x9B | SegmentCache.Present | SegmentCache.Long | SegmentCache.Granularity);
        }
        else
        {
            bsp.SetFlat32(EntryPoint, 0);
            s->Cs = SegmentCache.Flat(0x10, 0x9B | SegmentCache.Present | SegmentCache.DefaultBig | SegmentCache.Granularity);
        }
        s->Ss = s->Ds = s->Es = SegmentCache.Flat(0x18, 0x93 | SegmentCache.Present | SegmentCache.DefaultBig | SegmentCache.Granularity);
        s->GdtrBase = LinuxBootLoader.GdtAddress;
        s->GdtrLimit = 31;
        s->Gpr[6] = LinuxBootLoader.BootParamsAddress; // RSI
        s->Gpr[5] = 0; s->Gpr[7] = 0; s->Gpr[3] = 0; // EBP, EDI, EBX = 0 (protocol)
        bsp.UpdateMode();
        bsp.Mmu.FlushAll();
        bsp.ExceptionIntercept = 0; // a real machine: exceptions go through the guest's IDT (or triple-fault)
    }
}
