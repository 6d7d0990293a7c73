using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Trace;
using Iced.Intel;
using static DynaSmp.Tests.Apic.ApicKit;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Platform;

/// <summary>KVM's hypercall interface (Documentation/virt/kvm/x86/hypercalls.rst, kvm_emulate_hypercall) as a KVM
/// guest sees it through VMCALL/VMMCALL, and KVM_FEATURE_PV_UNHALT's kick, which Linux's paravirtual spinlocks use.</summary>
public unsafe class KvmHypercallTests
{
    const ulong Code = 0x10_0000, Results = 0x9100;

    /// <summary>Both tiers: VMCALL is a tier-0 call from translated code.</summary>
    public static readonly TheoryData<string> Tiers = new() { "interpret", "compiled" };

    static JitOptions Tier(string tier) => tier == "interpret" ? JitOptions.InterpretOnly : JitOptions.CompileFirst;

    static Vm OneVcpu(JitOptions jit, bool kvmParavirt = true) =>
        new(new VmConfig { Vcpus = 1, MemoryBytes = 16 << 20, KvmParavirt = kvmParavirt, Jit = jit, DeterministicSeed = 1 });

    /// <summary>Writes the program at <see cref="Code"/> and points vCPU 0 at it, flat in the assembler's bitness.</summary>
    static CpuCore Load(Vm vm, Assembler a)
    {
        vm.Ram.Write(Code, CodeBytes.Assemble(a, Code));
        var core = vm.Vcpus[0].Core;
        if (a.Bitness == 64) core.SetFlat64(Code, 0x7000);
        else core.SetFlat32(Code, 0x7000);
        return core;
    }

    static ulong Result(Vm vm, int k) => BitConverter.ToUInt64(vm.Ram.Span(Results + (ulong)k * 8, 8));

    [Theory]
    [MemberData(nameof(Tiers))]
    public void Hypercalls_answer_in_rax_as_kvm_does_in_64_bit_mode(string tier)
    {
        using var vm = OneVcpu(Tier(tier));
        var a = new Assembler(64);
        a.mov(eax, (int)Vcpu.KvmHcVapicPollIrq); a.vmcall(); a.mov(__qword_ptr[(long)Results], rax);
        a.mov(eax, 99); a.vmcall(); a.mov(__qword_ptr[(long)Results + 8], rax);           // no such hypercall
        a.mov(rax, 0x1_0000_0001L); a.vmmcall(); a.mov(__qword_ptr[(long)Results + 16], rax); // all 64 bits are the number
        a.mov(eax, (int)Vcpu.KvmHcKickCpu); a.xor(ebx, ebx); a.mov(ecx, 7); a.vmcall();  // APIC ID 7: nobody there
        a.mov(__qword_ptr[(long)Results + 24], rax);
        a.hlt();
        Assert.Equal(ExitReason.Hlt, Load(vm, a).Run());
        Assert.Equal(0UL, Result(vm, 0));
        Assert.Equal(unchecked((ulong)-Vcpu.KvmEnosys), Result(vm, 1));
        Assert.Equal(unchecked((ulong)-Vcpu.KvmEnosys), Result(vm, 2));
        Assert.Equal(0UL, Result(vm, 3));
        Assert.Equal(1, vm.Vcpus[0].Stats.IpiSent[(int)DeliveryMode.RemoteRead]); // the kick was routed, to no one
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void Outside_64_bit_mode_the_number_and_the_result_are_32_bits(string tier)
    {
        using var vm = OneVcpu(Tier(tier));
        var a = new Assembler(32);
        a.mov(eax, (int)Vcpu.KvmHcVapicPollIrq); a.vmcall(); a.mov(__dword_ptr[(uint)Results], eax);
        a.mov(eax, 99); a.vmcall(); a.mov(__dword_ptr[(uint)Results + 8], eax);
        a.hlt();
        var core = Load(vm, a);
        core.State->Gpr[0] = 0xDEAD_BEEF_0000_0000; // stale upper half: not part of the number
        Assert.Equal(ExitReason.Hlt, core.Run());
        Assert.Equal(0UL, Result(vm, 0));
        Assert.Equal((ulong)unchecked((uint)-Vcpu.KvmEnosys), Result(vm, 1));
        Assert.Equal((ulong)unchecked((uint)-Vcpu.KvmEnosys), core.State->Gpr[0]); // RAX holds the 32-bit result, zero-extended
    }

    [Fact]
    public void Above_cpl_0_a_hypercall_is_refused_with_eperm()
    {
        using var vm = OneVcpu(JitOptions.InterpretOnly);
        vm.Ram.Write(Code, [0xB8, 0x05, 0, 0, 0, 0x0F, 0x01, 0xC1, 0xF4]); // mov eax, KVM_HC_KICK_CPU; vmcall; hlt
        var core = vm.Vcpus[0].Core;
        core.SetFlat32(Code, 0x7000);
        core.State->Cpl = 3;
        core.Run(); // HLT at CPL 3 is #GP: the run ends there, after the hypercall
        Assert.Equal(unchecked((uint)-Vcpu.KvmEperm), (uint)core.State->Gpr[0]);
        Assert.Equal(0, vm.Vcpus[0].Stats.IpiSent[(int)DeliveryMode.RemoteRead]);
    }

    [Theory]
    [InlineData(0xC1)] // VMCALL
    [InlineData(0xD9)] // VMMCALL
    public void Without_the_kvm_interface_vmcall_and_vmmcall_are_undefined(byte modrm)
    {
        using var vm = OneVcpu(JitOptions.InterpretOnly, kvmParavirt: false);
        vm.Ram.Write(Code, [0x0F, 0x01, modrm, 0xF4]);
        var core = vm.Vcpus[0].Core;
        core.SetFlat64(Code, 0x7000);
        Assert.Equal(ExitReason.Exception, core.Run());
        Assert.Equal(Vector.UD, core.ExitVector);
        Assert.Equal(Code, core.State->Rip);
    }

    [Theory]
    [MemberData(nameof(Tiers))]
    public void The_kick_wakes_a_vcpu_halted_with_interrupts_off(string tier)
    {
        using var vm = NewParkVm(2, kvmParavirt: true, jit: Tier(tier));
        var ap = vm.Vcpus[1];
        StartAp(vm, 1);
        RunIdle(ap);
        Assert.Equal(MpState.Halted, ap.MpState); // cli; hlt
        Assert.False(ap.CanProgress);

        var a = new Assembler(64);
        a.mov(eax, (int)Vcpu.KvmHcKickCpu); a.xor(ebx, ebx); a.mov(ecx, 1); a.vmcall();
        a.mov(__qword_ptr[(long)Results], rax);
        a.hlt();
        Assert.Equal(ExitReason.Hlt, Load(vm, a).Run()); // vCPU 0, the BSP
        Assert.Equal(0UL, Result(vm, 0));

        Assert.True(ap.PvUnhalted);
        Assert.True(ap.CanProgress);
        RunIdle(ap);
        Assert.Equal(1, ap.Wakeups);
        Assert.Equal(0x66, Mem8(vm, Marker + 1)); // it ran on after the HLT, then halted again
        Assert.Equal(MpState.Halted, ap.MpState);
        Assert.False(ap.PvUnhalted);
        var paths = vm.Vcpus[0].Trace.Snapshot().Select(e => e.Path).ToList();
        Assert.Contains(KvmPath.PvKickSent, paths);
        Assert.Contains(KvmPath.PvUnhaltLatched, paths);
        Assert.Equal(1, ap.Stats.IpiReceived[(int)DeliveryMode.RemoteRead]);
    }
}
