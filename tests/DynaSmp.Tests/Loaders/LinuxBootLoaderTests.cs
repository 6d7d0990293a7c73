using System.Buffers.Binary;
using DynaSmp.Machine;
using DynaSmp.Machine.Loaders;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Loaders;

/// <summary>The Linux x86 boot protocol loader against Documentation/arch/x86/boot.rst, with small bzImages built
/// here: header fields honoured, boot_params filled, malformed images rejected with a reason, and a synthetic kernel
/// run at its 64-bit (and 32-bit) entry that reports what it was handed.</summary>
public class LinuxBootLoaderTests
{
    const int SetupSectors = 1, KernelOffset = (SetupSectors + 1) * 512;

    /// <summary>A bzImage whose protected-mode part is <paramref name="kernel"/> (64-bit entry at +0x200).</summary>
    internal static byte[] BzImage(byte[] kernel, ushort version = 0x020F, ushort xloadflags = 1, uint prefAddress = 0x100_0000, uint initSize = 0x10_0000)
    {
        var b = new byte[KernelOffset + kernel.Length];
        b[0x1F1] = SetupSectors;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x1FE), 0xAA55);
        b[0x200] = 0xEB; b[0x201] = 0x66;                  // jmp short: the header ends at 0x268
        "HdrS"u8.CopyTo(b.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x206), version);
        b[0x211] = 0x01;                                    // LOADED_HIGH
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x214), 0x10_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x22C), 0x7FFF_FFFF);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x230), 0x20_0000);
        b[0x234] = 1;                                       // relocatable
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(0x236), xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x238), 255);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(0x258), prefAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(0x260), initSize);
        kernel.CopyTo(b, KernelOffset);
        return b;
    }

    [Fact]
    public void Plan_loads_at_the_preferred_address_and_fills_boot_params()
    {
        var image = BzImage(new byte[0x1000]);
        var initrd = new byte[0x3000];
        var plan = LinuxBootLoader.Plan(image, 64UL << 20, "console=ttyS0", initrd);
        Assert.Equal(0x100_0000UL, plan.KernelAddress);
        Assert.True(plan.Entry64);
        Assert.Equal(0x100_0200UL, plan.EntryPoint);
        var bp = plan.BootParams;
        Assert.Equal(0xFF, bp[0x210]);                                          // type_of_loader
        Assert.Equal(0x100_0000u, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x214)));
        Assert.Equal((uint)LinuxBootLoader.CommandLineAddress, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x228)));
        uint rdAddr = BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x218));
        Assert.Equal(0x3000u, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x21C)));
        Assert.Equal(0u, rdAddr & 0xFFF);
        Assert.True(rdAddr >= 0x110_0000 && rdAddr + 0x3000 <= 64u << 20, $"initrd at 0x{rdAddr:x}");
        Assert.Equal((byte)'H', bp[0x202]);                                      // header copied
        Assert.Equal(3, bp[0x1E8]);                                              // e820 entries
        Assert.Equal(0x100000UL, BinaryPrimitives.ReadUInt64LittleEndian(bp.AsSpan(0x2D0 + 2 * 20)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bp.AsSpan(0x2D0 + 2 * 20 + 16)));
        Assert.Equal(LinuxBootLoader.AcpiAddress, BinaryPrimitives.ReadUInt64LittleEndian(bp.AsSpan(0x070)));
    }

    [Fact]
    public void Small_memory_relocates_to_the_first_aligned_address()
    {
        var plan = LinuxBootLoader.Plan(BzImage(new byte[0x1000]), 12UL << 20, "", default);
        Assert.Equal(0x20_0000UL, plan.KernelAddress);
    }

    [Fact]
    public void Kernel_without_the_64bit_entry_flag_enters_at_code32_start()
    {
        var plan = LinuxBootLoader.Plan(BzImage(new byte[0x1000], xloadflags: 0), 64UL << 20, "", default);
        Assert.False(plan.Entry64);
        Assert.Equal(plan.KernelAddress, plan.EntryPoint);
    }

    public static TheoryData<string, string> Malformed() => new()
    {
        { "short", "too short" },
        { "no-aa55", "0xAA55" },
        { "no-hdrs", "HdrS" },
        { "old-protocol", "2.10 or later" },
        { "zimage", "zImage" },
        { "truncated-payload", "truncated" },
        { "huge-init-size", "larger --mem" },
        { "bad-alignment", "power of two" },
        { "setup-past-end", "past the end" },
        { "long-cmdline", "at most 255" },
        { "huge-initrd", "initrd" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_images_are_rejected_with_the_reason(string kind, string expected)
    {
        byte[] image = BzImage(new byte[0x1000]);
        string cmdline = "";
        byte[] initrd = [];
        switch (kind)
        {
            case "short": image = image[..0x200]; break;
            case "no-aa55": image[0x1FE] = 0; break;
            case "no-hdrs": image[0x202] = (byte)'X'; break;
            case "old-protocol": image = BzImage(new byte[0x1000], version: 0x0209); break;
            case "zimage": image[0x211] = 0; break;
            case "truncated-payload": BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x24C), 0x10_0000); break;
            case "huge-init-size": image = BzImage(new byte[0x1000], initSize: 0x7000_0000); break;
            case "bad-alignment": BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(0x230), 0x30_0000); break;
            case "setup-past-end": image[0x1F1] = 200; break;
            case "long-cmdline": cmdline = new string('x', 256); break;
            case "huge-initrd": initrd = new byte[62 << 20]; break;
        }
        var e = Assert.Throws<LinuxImageException>(() => LinuxBootLoader.Plan(image, 64UL << 20, cmdline, initrd));
        Assert.Contains(expected, e.Message);
    }

    /// <summary>A kernel whose entry prints the first command-line byte (from boot_params.cmd_line_ptr, through RSI/ESI),
    /// the low byte of CS plus '0' (__BOOT_CS = 0x10 gives '@') and CR0.PG, then exits with the e820 entry count.
    /// The 64-bit entry is code32_start + 0x200; the 32-bit one code32_start (a HLT in the 64-bit image).</summary>
    static byte[] ReportingKernel(bool entry64)
    {
        var a = new Assembler(entry64 ? 64 : 32);
        a.mov(edx, 0x3F8);
        if (entry64) { a.mov(eax, __dword_ptr[rsi + 0x228]); a.mov(al, __byte_ptr[rax]); a.movzx(ecx, __byte_ptr[rsi + 0x1E8]); }
        else { a.mov(eax, __dword_ptr[esi + 0x228]); a.mov(al, __byte_ptr[eax]); a.movzx(ecx, __byte_ptr[esi + 0x1E8]); }
        a.@out(dx, al);
        a.mov(eax, cs);
        a.add(al, (byte)'0');
        a.@out(dx, al);
        if (entry64) a.mov(rax, cr0); else a.mov(eax, cr0);
        a.shr(eax, 31);
        a.add(al, (byte)'0');
        a.@out(dx, al);
        a.mov(eax, ecx);
        a.mov(edx, 0xF4);
        a.@out(dx, al);
        a.hlt();
        var w = new CodeWriterImpl();
        int entry = entry64 ? 0x200 : 0;
        a.Assemble(w, 0x100_0000UL + (ulong)entry);
        var kernel = new byte[entry + w.Bytes.Count];
        kernel[0] = 0xF4;
        w.Bytes.CopyTo(kernel, entry);
        return kernel;
    }

    static (int? Status, string Serial, LinuxBootPlan Plan) Boot(byte[] image, string cmdline) => Boot(LinuxKernel.Open(image), cmdline);

    /// <summary>Boots <paramref name="kernel"/> on one vCPU until its isa-debug-exit; <paramref name="beforeLoad"/> may
    /// touch the VM's RAM first.</summary>
    internal static (int? Status, string Serial, LinuxBootPlan Plan) Boot(LinuxKernel kernel, string cmdline, ulong ram = 64UL << 20,
        Action<Pc>? beforeLoad = null)
    {
        var output = new List<byte>();
        using var pc = new Pc(new VmConfig { Vcpus = 1, MemoryBytes = ram, Trace = false }, output.Add);
        beforeLoad?.Invoke(pc);
        var plan = pc.LoadLinux(kernel, default, cmdline);
        pc.Vm.Start();
        Assert.True(pc.Vm.WaitForExit(TimeSpan.FromSeconds(20)), "the synthetic kernel did not exit");
        pc.Vm.Join();
        Assert.True(pc.Vm.ExitKind == VmExitKind.DebugExit, $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage}");
        return (pc.Vm.ExitStatus, System.Text.Encoding.ASCII.GetString(output.ToArray()), plan);
    }

    sealed class CodeWriterImpl : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    [Fact]
    public void Synthetic_kernel_runs_at_the_64bit_entry_with_paging_and_boot_params_in_rsi()
    {
        var (status, serial, plan) = Boot(BzImage(ReportingKernel(entry64: true)), "hello");
        Assert.True(plan.Entry64);
        Assert.Equal((3 << 1) | 1, status);   // three e820 entries
        Assert.Equal("h@1", serial);
    }

    [Fact]
    public void Synthetic_kernel_runs_at_the_32bit_entry_without_paging()
    {
        var (status, serial, plan) = Boot(BzImage(ReportingKernel(entry64: false), xloadflags: 0), "z");
        Assert.False(plan.Entry64);
        Assert.Equal((3 << 1) | 1, status);
        Assert.Equal("z@0", serial);
    }
}
