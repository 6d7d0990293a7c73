using DynaSmp.Tests.Differential;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Fpu;

/// <summary>Fixed cases that show which side of each <see cref="FpVendorQuirk"/> a CPU is on.</summary>
public static class FpQuirkProbes
{
    /// <summary>FCOMI ST(0), ST(1) with 1.0 and 2.0 and C1 set beforehand.</summary>
    public static FpCase FcomiWithC1Set()
    {
        var r = new Rng(1);
        var im = new byte[512];
        BitConverter.TryWriteBytes(im.AsSpan(0), (ushort)0x037F);
        BitConverter.TryWriteBytes(im.AsSpan(2), (ushort)0x0200); // C1, TOP 0
        im[4] = 0x03;
        BitConverter.TryWriteBytes(im.AsSpan(24), 0x1F80u);
        BitConverter.TryWriteBytes(im.AsSpan(32), 0x8000_0000_0000_0000UL);
        BitConverter.TryWriteBytes(im.AsSpan(40), (ushort)0x3FFF);
        BitConverter.TryWriteBytes(im.AsSpan(48), 0x8000_0000_0000_0000UL);
        BitConverter.TryWriteBytes(im.AsSpan(56), (ushort)0x4000);
        return FpuDiff.Make("probe", 0, Instruction.Create(Code.Fcomi_st0_sti, Register.ST0, Register.ST1), im, FpuDiff.BaseInput(r), new byte[NativeRunner.BufferSize]);
    }

    /// <summary>FSTP1 (D9 D9) with ST(0) empty and ST(1) holding 2.0, all exceptions masked.</summary>
    public static FpCase FstpFromEmpty()
    {
        var r = new Rng(2);
        var im = new byte[512];
        BitConverter.TryWriteBytes(im.AsSpan(0), (ushort)0x037F);
        BitConverter.TryWriteBytes(im.AsSpan(2), (ushort)0x0000);
        im[4] = 0x02; // physical 1 = ST(1) valid, ST(0) empty
        BitConverter.TryWriteBytes(im.AsSpan(24), 0x1F80u);
        BitConverter.TryWriteBytes(im.AsSpan(48), 0x8000_0000_0000_0000UL);
        BitConverter.TryWriteBytes(im.AsSpan(56), (ushort)0x4000);
        return FpuDiff.Make("probe", 0, Instruction.Create(Code.Fstpnce_sti, Register.ST1), im, FpuDiff.BaseInput(r), new byte[NativeRunner.BufferSize]);
    }

    /// <summary>FYL2X with x = ST(0) = 0.5 and y = ST(1) = 3.0, all exceptions masked: the result, -3.0, is exact.</summary>
    public static FpCase Fyl2xOfPowerOfTwo()
    {
        var r = new Rng(3);
        var im = new byte[512];
        BitConverter.TryWriteBytes(im.AsSpan(0), (ushort)0x037F);
        BitConverter.TryWriteBytes(im.AsSpan(2), (ushort)0x0000);
        im[4] = 0x03;
        BitConverter.TryWriteBytes(im.AsSpan(24), 0x1F80u);
        BitConverter.TryWriteBytes(im.AsSpan(32), 0x8000_0000_0000_0000UL);
        BitConverter.TryWriteBytes(im.AsSpan(40), (ushort)0x3FFE);
        BitConverter.TryWriteBytes(im.AsSpan(48), 0xC000_0000_0000_0000UL);
        BitConverter.TryWriteBytes(im.AsSpan(56), (ushort)0x4000);
        return FpuDiff.Make("probe", 0, Instruction.Create(Code.Fyl2x), im, FpuDiff.BaseInput(r), new byte[NativeRunner.BufferSize]);
    }
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
            Assert.True(q.ProbeMatches(HostCpu.IsIntel, native.Image), $"{q.Name}: the host ({HostCpu.Vendor}) does not show its vendor's documented side");
            Assert.True(q.ProbeMatches(true, emu!.Image), $"{q.Name}: DynaSmp does not show the Intel side");
        }
    }
}
