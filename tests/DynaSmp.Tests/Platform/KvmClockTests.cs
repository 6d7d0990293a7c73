using System.Buffers.Binary;
using System.Diagnostics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;

namespace DynaSmp.Tests.Platform;

/// <summary>KVM's paravirtual CPUID leaves and kvm-clock (Documentation/virt/kvm/x86/cpuid.rst and msr.rst): the
/// signature, the feature bits, and a pvclock record whose scale turns the guest's TSC into nanoseconds.</summary>
public class KvmClockTests
{
    [Fact]
    public void Cpuid_reports_the_kvm_signature_and_features_only_when_enabled()
    {
        var cpuid = new CpuidModel();
        cpuid.Query(1, 0, out _, out _, out uint c, out _);
        Assert.Equal(0u, c >> 31);
        cpuid.Query(CpuidModel.KvmSignatureLeaf, 0, out uint a0, out _, out _, out _);
        Assert.NotEqual(CpuidModel.KvmFeaturesLeaf, a0);      // no hypervisor: the highest basic leaf answers
        cpuid.KvmParavirt = true;
        cpuid.Query(1, 0, out _, out _, out c, out _);
        Assert.Equal(1u, c >> 31);                            // CPUID.1:ECX.HYPERVISOR
        cpuid.Query(CpuidModel.KvmSignatureLeaf, 0, out uint a, out uint b, out c, out uint d);
        Assert.Equal(CpuidModel.KvmFeaturesLeaf, a);
        var sig = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(sig, b); BinaryPrimitives.WriteUInt32LittleEndian(sig.AsSpan(4), c); BinaryPrimitives.WriteUInt32LittleEndian(sig.AsSpan(8), d);
        Assert.Equal("KVMKVMKVM\0\0\0", System.Text.Encoding.ASCII.GetString(sig));
        cpuid.Query(CpuidModel.KvmFeaturesLeaf, 0, out a, out _, out _, out d);
        Assert.Equal(1u << 3 | 1u << 7 | 1u << 24, a);        // CLOCKSOURCE2, PV_UNHALT, CLOCKSOURCE_STABLE_BIT
        Assert.Equal(0u, d);                                  // no hints
    }

    [Theory]
    [InlineData(1_000_000_000L)]
    [InlineData(10_000_000L)]
    [InlineData(3_000_000_000L)]
    public void Scale_converts_ticks_to_nanoseconds(long hz)
    {
        var (mul, shift) = KvmClock.Scale(hz);
        ulong ticks = (ulong)hz * 7 / 3;                      // 2.33 s
        ulong shifted = shift >= 0 ? ticks << shift : ticks >> -shift;
        ulong ns = (ulong)((UInt128)shifted * mul >> 32);
        Assert.InRange((double)ns, 2_333_333_333 * 0.999999, 2_333_333_334 * 1.000001);
    }

    [Fact]
    public unsafe void System_time_msr_writes_a_stable_pvclock_record_and_reads_back()
    {
        using var vm = new Vm(new VmConfig { Vcpus = 1, MemoryBytes = 4 << 20, KvmParavirt = true, Trace = false });
        var core = vm.Vcpus[0].Core;
        const ulong Record = 0x3000;
        core.MsrWriteHook!(KvmClock.SystemTimeMsr, Record | 1);
        Assert.Equal(Record | 1, core.MsrReadHook!(KvmClock.SystemTimeMsr));
        var r = vm.Ram.Span(Record, 32);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(r) & 1);   // version even: consistent
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(r[8..])); // tsc_timestamp
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(r[16..])); // system_time
        var (mul, shift) = KvmClock.Scale(Stopwatch.Frequency);
        Assert.Equal(mul, BinaryPrimitives.ReadUInt32LittleEndian(r[24..]));
        Assert.Equal((byte)shift, r[28]);
        Assert.Equal(1, r[29]);                                              // PVCLOCK_TSC_STABLE_BIT
        // A record outside RAM is ignored, as KVM does; the MSR still holds the value.
        Assert.True(core.MsrWriteHook!(KvmClock.SystemTimeMsr, 0xFFFF_0000UL | 1));
        using var plain = new Vm(new VmConfig { Vcpus = 1, MemoryBytes = 4 << 20, Trace = false });
        Assert.Null(plain.Vcpus[0].Core.MsrReadHook!(KvmClock.SystemTimeMsr)); // off: the MSR is not the machine's
    }

    [Fact]
    public void Wall_clock_msr_writes_the_boot_time()
    {
        using var vm = new Vm(new VmConfig { Vcpus = 1, MemoryBytes = 4 << 20, KvmParavirt = true, Trace = false });
        var core = vm.Vcpus[0].Core;
        core.MsrWriteHook!(KvmClock.WallClockMsr, 0x4000);
        uint sec = BinaryPrimitives.ReadUInt32LittleEndian(vm.Ram.Span(0x4004, 4));
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange((long)sec, now - 60, now);             // the TSC started when the VM was built, moments ago
    }
}
