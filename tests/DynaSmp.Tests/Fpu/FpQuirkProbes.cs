using DynaSmp.Tests.Differential;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Fpu;

/// <summary>Fixed cases that show which side of each <see cref="FpVendorQuirk"/> a CPU is on.</summary>
public static class FpQuirkProbes
{
    /// <summary>An FXSAVE image with all exceptions masked (FCW 037F), MXCSR at reset, the given FSW and abridged
    /// tag byte, and the given (mantissa, sign and exponent) values in ST(0) and ST(1) (null: left zero).</summary>
    static byte[] Image(ushort fsw, byte tags, (ulong Mant, ushort Exp)? st0, (ulong Mant, ushort Exp)? st1, ushort fcw = 0x037F)
    {
        var im = new byte[512];
        BitConverter.TryWriteBytes(im.AsSpan(0), fcw);
        BitConverter.TryWriteBytes(im.AsSpan(2), fsw);
        im[4] = tags;
        BitConverter.TryWriteBytes(im.AsSpan(24), 0x1F80u);
        foreach (var (slot, v) in new[] { (0, st0), (1, st1) })
        {
            if (v is not { } x) continue;
            BitConverter.TryWriteBytes(im.AsSpan(32 + 16 * slot), x.Mant);
            BitConverter.TryWriteBytes(im.AsSpan(40 + 16 * slot), x.Exp);
        }
        return im;
    }

    static FpCase Probe(int rngSeed, Instruction insn, byte[] image) =>
        FpuDiff.Make("probe", 0, insn, image, FpuDiff.BaseInput(new Rng((ulong)rngSeed)), new byte[NativeRunner.BufferSize]);

    /// <summary>FSTP1 (D9 D9) with ST(0) empty, ST(1) holding 2.0 and C1 set, all exceptions masked.</summary>
    public static FpCase FstpFromEmpty() =>
        Probe(2, Instruction.Create(Code.Fstpnce_sti, Register.ST1), Image(0x0200, 0x02, null, (0x8000_0000_0000_0000UL, 0x4000)));

    /// <summary>FYL2X with x = ST(0) = +0 and y = ST(1) = -3.0, all exceptions masked: +inf with ZE.</summary>
    public static FpCase Fyl2xOfZero() =>
        Probe(5, Instruction.Create(Code.Fyl2x), Image(0x0000, 0x03, (0, 0x0000), (0xC000_0000_0000_0000UL, 0xC000)));

    /// <summary>FPREM with ST(0) the denormal 2^-16400 and ST(1) = +inf, UE unmasked (FCW 036F).</summary>
    public static FpCase FpremDenormalByInfinity() =>
        Probe(4, Instruction.Create(Code.Fprem), Image(0x0000, 0x03, (1UL << 45, 0x0000), (0x8000_0000_0000_0000UL, 0x7FFF), fcw: 0x036F));
}

/// <summary>Each FP vendor quirk's probe shows the host vendor's documented side natively, and DynaSmp shows Intel's.</summary>
[Collection("Differential")]
public sealed class FpVendorQuirkTests(ITestOutputHelper output)
{
    [DifferentialFact]
    public void Probes_show_the_host_vendor_natively_and_intel_in_dynasmp()
    {
        foreach (var q in FpVendorQuirks.All)
        {
            var c = q.Probe();
            FpuDiff.Outcome native;
            lock (NativeRunner.Lock) native = FpuDiff.RunNative(c);
            using var ram = DiffHarness.NewRam();
            var (emu, err) = FpuDiff.RunDynaSmp(c, ram, compiled: false);
            Assert.Null(err);
            output.WriteLine($"{q.Name}: host {HostCpu.Vendor} shows the {(q.ProbeMatches(true, native.Image) ? "Intel" : "AMD")} side");
            Assert.True(q.ProbeMatches(q.HostShowsIntel, native.Image), $"{q.Name}: the host ({HostCpu.Description}) does not show the side documented for it");
            Assert.True(q.ProbeMatches(true, emu!.Image), $"{q.Name}: DynaSmp does not show the Intel side");
        }
    }
}
