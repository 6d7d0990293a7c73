using System.Buffers.Binary;
using DynaSmp.Machine.Guests;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Guests;

public class BuiltinGuestTests(ITestOutputHelper output)
{
    static uint U32(byte[] b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));
    static ushort U16(byte[] b, int at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(at));

    [Fact]
    public void Same_options_give_the_same_bytes()
    {
        Assert.Equal(BuiltinGuest.Build(BuiltinGuestOptions.Default), BuiltinGuest.Build(new BuiltinGuestOptions()));
        var linux = new BuiltinGuestOptions { IpiDelays = IpiDelays.Linux };
        Assert.Equal(BuiltinGuest.Build(linux), BuiltinGuest.Build(linux with { }));
        Assert.NotEqual(BuiltinGuest.Build(BuiltinGuestOptions.Default), BuiltinGuest.Build(linux));
    }

    readonly record struct Phdr(uint Type, uint Offset, uint VAddr, uint PAddr, uint FileSz, uint MemSz);

    static Phdr[] ProgramHeaders(byte[] f)
    {
        uint phoff = U32(f, 28);
        int n = U16(f, 44);
        var r = new Phdr[n];
        for (int i = 0; i < n; i++)
        {
            int p = (int)phoff + i * U16(f, 42);
            r[i] = new Phdr(U32(f, p), U32(f, p + 4), U32(f, p + 8), U32(f, p + 12), U32(f, p + 16), U32(f, p + 20));
        }
        return r;
    }

    /// <summary>Physical address -> file offset through the PT_LOAD headers, as a loader would map it.</summary>
    static int FileOffsetOf(byte[] f, uint address)
    {
        foreach (var ph in ProgramHeaders(f))
            if (ph.Type == 1 && address >= ph.PAddr && address < ph.PAddr + ph.FileSz)
                return (int)(ph.Offset + (address - ph.PAddr));
        throw new Xunit.Sdk.XunitException($"0x{address:X} is in no PT_LOAD segment");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Elf32_and_multiboot_headers_parse(bool addressFields)
    {
        var f = BuiltinGuest.Build(new BuiltinGuestOptions { MultibootAddressFields = addressFields });

        // ELF header (System V gABI): 32-bit, little-endian, ET_EXEC, EM_386, entry = the multiboot entry.
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 1, 1, 1 }, f[..7]);
        Assert.Equal(2, U16(f, 16));
        Assert.Equal(3, U16(f, 18));
        Assert.Equal(GuestLayout.Entry32, U32(f, 24));
        Assert.Equal(52, U16(f, 40));
        Assert.Equal(32, U16(f, 42));

        var phs = ProgramHeaders(f);
        Assert.Equal(4, phs.Length);
        Assert.Equal(new[] { GuestLayout.LoadAddress, GuestLayout.Code64, GuestLayout.Data, GuestLayout.TrampolineImage },
            phs.Select(p => p.PAddr).ToArray());
        uint end = 0;
        foreach (var ph in phs)
        {
            Assert.Equal(1u, ph.Type);                        // PT_LOAD
            Assert.Equal(ph.VAddr, ph.PAddr);
            Assert.Equal(ph.FileSz, ph.MemSz);                // no BSS to zero
            Assert.True(ph.Offset + ph.FileSz <= f.Length);
            Assert.True(ph.PAddr + ph.MemSz < 256u << 20);    // fits any RAM size the tests use
            if (end != 0) Assert.Equal(end, ph.PAddr);        // contiguous: no holes a loader could leave dirty
            end = ph.PAddr + ph.MemSz;
        }
        Assert.Equal((uint)GuestLayout.TrSize, phs[3].FileSz);

        // Multiboot v1 header (spec 3.1): 4-byte aligned in the first 8192 bytes; magic + flags + checksum == 0 mod 2^32.
        int at = -1;
        for (int i = 0; i + 12 <= Math.Min(f.Length, 8192); i += 4)
            if (U32(f, i) == 0x1BADB002) { at = i; break; }
        Assert.True(at >= 0, "no multiboot header in the first 8 KiB");
        uint flags = U32(f, at + 4);
        Assert.Equal(0u, unchecked(U32(f, at) + flags + U32(f, at + 8)));
        Assert.Equal(addressFields ? 1u << 16 : 0u, flags);
        Assert.Equal(0u, flags & 0xFFFF);                     // no required features QEMU might refuse
        // Address fields (valid whichever way the flag is set): header_addr, load_addr, load_end_addr, bss, entry.
        Assert.Equal(GuestLayout.MultibootHeader, U32(f, at + 12));
        Assert.Equal(GuestLayout.LoadAddress, U32(f, at + 16));
        Assert.Equal(end, U32(f, at + 20));
        Assert.Equal(0u, U32(f, at + 24));
        Assert.Equal(U32(f, 24), U32(f, at + 28));
        Assert.Equal(at, FileOffsetOf(f, GuestLayout.MultibootHeader)); // header sits where the ELF says it loads
        // a.out-kludge view (what QEMU does with bit 16): file from (at - (header_addr - load_addr)) lands at load_addr.
        Assert.Equal(phs[0].Offset, (uint)at - (U32(f, at + 12) - U32(f, at + 16)));
    }

    static Instruction FirstInstruction(byte[] f, uint address, int bitness, ulong ip)
    {
        int off = FileOffsetOf(f, address);
        var d = Decoder.Create(bitness, new ByteArrayCodeReader(f, off, f.Length - off));
        d.IP = ip;
        return d.Decode();
    }

    [Fact]
    public void Entry_points_hold_the_expected_first_instructions()
    {
        var f = BuiltinGuest.Build(BuiltinGuestOptions.Default);
        Assert.Equal(Mnemonic.Cli, FirstInstruction(f, GuestLayout.Entry32, 32, GuestLayout.Entry32).Mnemonic);
        // The trampoline as stored: 16-bit CLI at its start; its 64-bit piece is jmp [rip+x] through tr_start.
        Assert.Equal(Mnemonic.Cli, FirstInstruction(f, GuestLayout.TrampolineImage, 16, 0).Mnemonic);
        var jmp = FirstInstruction(f, GuestLayout.TrampolineImage + GuestLayout.TrStartup64, 64,
            GuestLayout.TrampolineBase + GuestLayout.TrStartup64);
        Assert.Equal(Code.Jmp_rm64, jmp.Code);
        Assert.True(jmp.IsIPRelativeMemoryOperand);
        Assert.Equal(GuestLayout.TrampolineBase + GuestLayout.TrStart, jmp.IPRelativeMemoryAddress);
        // The trampoline GDT pointer names the trampoline GDT at its run-time address, limit 4 descriptors.
        int tr = FileOffsetOf(f, GuestLayout.TrampolineImage);
        Assert.Equal(31, U16(f, tr + (int)GuestLayout.TrGdtPointer));
        Assert.Equal(GuestLayout.TrampolineBase + GuestLayout.TrGdt, U32(f, tr + (int)GuestLayout.TrGdtPointer + 2));
    }

    static string[] ExpectedSerial(int cpus, params string[] before)
    {
        var lines = new List<string>(before) { $"DynaSmp builtin guest: fw_cfg reports {cpus} CPUs" };
        for (int i = 1; i < cpus; i++) lines.Add($"AP {i} online");
        lines.Add($"SMP: {cpus} of {cpus} CPUs online");
        return lines.ToArray();
    }

    static string[] Lines(string s) => s.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [QemuTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Every_cpu_comes_online_under_qemu(int smp)
    {
        var r = QemuRunner.Run(BuiltinGuest.Build(BuiltinGuestOptions.Default), smp, TimeSpan.FromSeconds(60));
        output.WriteLine($"qemu -smp {smp}: exit {r.ExitCode}, {r.Wall.TotalSeconds:F2} s\n{r.Stdout}{r.Stderr}");
        Assert.Equal(ExpectedSerial(smp), Lines(r.Stdout));
        Assert.Equal(1, r.ExitCode); // isa-debug-exit: (0 << 1) | 1
    }

    [QemuFact]
    public void Linux_ipi_delays_and_multiboot_address_fields_also_boot_under_qemu()
    {
        var opts = new BuiltinGuestOptions { IpiDelays = IpiDelays.Linux, MultibootAddressFields = true };
        var r = QemuRunner.Run(BuiltinGuest.Build(opts), 4, TimeSpan.FromSeconds(60));
        output.WriteLine($"qemu -smp 4: exit {r.ExitCode}, {r.Wall.TotalSeconds:F2} s\n{r.Stdout}{r.Stderr}");
        var lines = Lines(r.Stdout);
        Assert.Equal(ExpectedSerial(4).Length + 1, lines.Length);
        Assert.Matches(@"^tsc: \d+ MHz \((CPUID 15H|CPUID 16H|assumed)\)$", lines[1]);
        Assert.Equal(ExpectedSerial(4), lines.Where((_, i) => i != 1).ToArray());
        Assert.Equal(1, r.ExitCode);
    }

    [QemuFact]
    public void An_ap_that_never_gets_startup_is_reported_and_fails_the_run()
    {
        // INIT without STARTUP leaves APIC ID 2 in wait-for-SIPI (SDM Vol. 3A 9.4.4.1), so it never checks in.
        var opts = new BuiltinGuestOptions { WithholdStartupFromApicId = 2, ApTimeoutMs = 2000 }; // generous: the other APs must check in even on a loaded host
        var r = QemuRunner.Run(BuiltinGuest.Build(opts), 4, TimeSpan.FromSeconds(60));
        output.WriteLine($"qemu -smp 4: exit {r.ExitCode}, {r.Wall.TotalSeconds:F2} s\n{r.Stdout}{r.Stderr}");
        Assert.Equal(new[]
        {
            "DynaSmp builtin guest: fw_cfg reports 4 CPUs", "AP 1 online", "AP 2 TIMEOUT", "AP 3 online",
            "SMP: 3 of 4 CPUs online",
        }, Lines(r.Stdout));
        Assert.Equal(3, r.ExitCode); // isa-debug-exit: (1 << 1) | 1
    }
}
