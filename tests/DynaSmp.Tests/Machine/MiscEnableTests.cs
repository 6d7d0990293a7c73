using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;
using static DynaSmp.Tests.Apic.ApicKit;

namespace DynaSmp.Tests.Machine;

/// <summary>IA32_MISC_ENABLE as a QEMU/KVM guest finds it: KVM's RESET value (BTS and PEBS unavailable,
/// kvm-semantics.md) plus the fast-strings bit QEMU writes at vCPU reset, on every vCPU, kept across INIT. Linux clears
/// REP_GOOD and ERMS ("Disabled fast string operations") when the bit is clear; the real-kernel test checks the log.</summary>
public unsafe class MiscEnableTests
{
    [Fact]
    public void Every_vcpu_starts_with_fast_strings_on_and_INIT_keeps_them()
    {
        using var vm = NewParkVm();
        foreach (var v in vm.Vcpus)
            Assert.Equal(Vcpu.MiscEnableFastStrings | (1UL << 11) | (1UL << 12), v.Core.State->MiscEnable);
        var ap = vm.Vcpus[1];
        Send(vm, 0, InitAssert, 1);
        Assert.Equal(VcpuExitReason.Again, ap.RunOnce());
        Assert.Equal(MpState.InitReceived, ap.MpState);
        Assert.Equal(1, ap.InitResets);
        Assert.Equal(Vcpu.MiscEnableFastStrings, ap.Core.State->MiscEnable & Vcpu.MiscEnableFastStrings);
    }
}
