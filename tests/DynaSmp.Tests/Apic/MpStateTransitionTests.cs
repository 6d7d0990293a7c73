using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;
using DynaSmp.Machine.Trace;
using static DynaSmp.Tests.Apic.ApicKit;

namespace DynaSmp.Tests.Apic;

/// <summary>Every row of kvm-semantics.md §8.2 (from-state x event -> to-state, with the KVM notes), on real
/// Vcpu/Lapic objects of a VM that is never started: events are posted with Vm.SendIpi as vCPU 0, acceptance
/// runs through GetMpState / RunOnce on the test thread.</summary>
public unsafe class MpStateTransitionTests
{
    const int Ap = 1;

    static void AssertInitState(Vcpu v)
    {
        var s = v.Core.State;
        Assert.Equal(0xF000, s->Cs.Selector);
        Assert.Equal(0xFFFF_0000UL, s->Cs.Base);
        Assert.Equal(0xFFF0UL, s->Rip);
        Assert.Equal(0UL, s->Cr0 & Cr0.PE);
    }

    /// <summary>Invariant 6: CS = v&lt;&lt;8, base v&lt;&lt;12, limit FFFF, IP 0, real mode, the rest as INIT left it.</summary>
    static void AssertSipiState(Vcpu v, byte vector)
    {
        var s = v.Core.State;
        Assert.Equal(vector << 8, s->Cs.Selector);
        Assert.Equal((ulong)vector << 12, s->Cs.Base);
        Assert.Equal(0xFFFFu, s->Cs.Limit);
        Assert.Equal(0UL, s->Rip);
        Assert.Equal(0UL, s->Cr0 & Cr0.PE);
        Assert.Equal(2UL, Flags.Get(s));
        Assert.Equal((ulong)CpuidModel.Signature, s->Gpr[2]);
        Assert.Equal(0UL, s->Gpr[0]);
        Assert.Equal(0UL, s->Efer);
        Assert.False(v.Apic.SoftwareEnabled);
    }

    static readonly Dictionary<string, Action> Rows = new()
    {
        // ---- UNINITIALIZED ----
        ["UNINITIALIZED + INIT -> INIT_RECEIVED, KVM_RUN returns again"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Assert.Equal(MpState.Uninitialized, v.MpState);
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(VcpuExitReason.Again, v.RunOnce());
            Assert.Equal(MpState.InitReceived, v.MpState);
            Assert.Equal(1, v.InitResets);
            Assert.Equal(1, v.AgainReturns);
            AssertInitState(v);
        },
        ["UNINITIALIZED + INIT with APIC_BASE.BSP=1 -> RUNNABLE at F000:FFF0, still returns again"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            v.Apic.WriteApicBase(0xFEE0_0900);
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(VcpuExitReason.Again, v.RunOnce());
            Assert.Equal(MpState.Runnable, v.MpState);
            AssertInitState(v);
            Assert.Equal(0xFEE0_0900UL, v.Apic.ApicBase); // INIT keeps APIC_BASE
        },
        ["UNINITIALIZED + INIT then SIPI pending -> RUNNABLE at the vector after one again"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Send(vm, 0, Sipi(0x9A), Ap);
            Assert.Equal(VcpuExitReason.Again, v.RunOnce());
            Assert.Equal(MpState.Runnable, v.MpState);
            Assert.Equal(1, v.AgainReturns);
            Assert.Equal(1, v.InitResets);
            Assert.Equal(1, v.SipiStarts);
            AssertSipiState(v, 0x9A);
            Assert.Equal(0, v.Apic.Pending.Bits);
        },
        ["UNINITIALIZED + SIPI only -> UNINITIALIZED, SIPI discarded"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, Sipi(0x12), Ap);
            Assert.Equal(VcpuExitReason.Again, v.RunOnce());
            Assert.Equal(MpState.Uninitialized, v.MpState);
            Assert.Equal(0, v.Apic.Pending.Bits); // invariant 3: no stale SIPI
            Assert.Equal(1, v.SipiDrops);
            Assert.Equal(0, v.SipiStarts);
        },
        // ---- INIT_RECEIVED ----
        ["INIT_RECEIVED + SIPI(v) -> RUNNABLE, CS = v<<8 : 0"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, Sipi(0x9F), Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertSipiState(v, 0x9F);
            Assert.Equal(1, v.SipiStarts);
        },
        ["INIT_RECEIVED + two SIPIs before acceptance -> one start, last vector wins"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, Sipi(0x10), Ap);
            Send(vm, 0, Sipi(0x20), Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertSipiState(v, 0x20);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(0, v.SipiDrops);
        },
        ["INIT_RECEIVED + INIT -> INIT_RECEIVED, reset again"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, InitEdge, Ap);
            Send(vm, 0, InitAssert, Ap); // several INITs before one acceptance: one reset (invariant 4)
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Assert.Equal(2, v.InitResets);
        },
        ["INIT_RECEIVED + SIPI then INIT -> INIT_RECEIVED, the SIPI pending at send time is discarded"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, Sipi(0x30), Ap);
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Assert.Equal(0, v.SipiStarts);
            Assert.Equal(0, v.Apic.Pending.Bits);
            AssertInitState(v);
        },
        // ---- RUNNABLE ----
        ["RUNNABLE + HLT with no wake event -> HALTED"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            Assert.Equal(MpState.Halted, v.MpState);
            Assert.Equal(0x55, Mem8(vm, Marker));
            Assert.Equal(1, v.Halts);
        },
        ["RUNNABLE + HLT with a wake event pending -> HLT is a no-op"] = () =>
        {
            // STI; HLT with a fixed interrupt in IRR: the HLT sits in the STI shadow, so it retires with a
            // deliverable interrupt pending (IF=1, no shadow after it) and must not halt (kvm_vcpu_has_events).
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            vm.Ram.Write(0xA000, [0xFB, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD]); // sti; hlt; cli; hlt; jmp $-3
            StartAp(vm, Ap, 0x0A);
            SoftwareEnable(v.Apic);
            Send(vm, 0, Fixed(FixedVector), Ap);
            Assert.True(IrrBit(v.Apic, FixedVector));
            RunIdle(v);
            Assert.Equal(1, v.HaltNoops);
            Assert.Equal(0x77, Mem8(vm, Marker + 2)); // the interrupt was then taken
            Assert.Equal(MpState.Halted, v.MpState);  // the handler's cli; hlt
        },
        ["RUNNABLE + INIT -> INIT_RECEIVED; IRR/ISR/TMR lost, APIC software-disabled, APIC_BASE and ID kept"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            SoftwareEnable(v.Apic);
            v.Apic.WriteRegister(0x350, 0x0700); // LVT LINT0 unmasked
            Send(vm, 0, 0x8000 | 0x4000 | 0x51u, Ap); // level-triggered fixed: IRR + TMR
            Assert.True(IrrBit(v.Apic, 0x51) && TmrBit(v.Apic, 0x51));
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Assert.False(IrrBit(v.Apic, 0x51));
            Assert.False(TmrBit(v.Apic, 0x51));
            Assert.Equal(0xFFu, v.Apic.ReadRegister(0xF0));
            Assert.NotEqual(0u, v.Apic.ReadRegister(0x350) & 0x1_0000);
            Assert.Equal(0xFEE0_0800UL, v.Apic.ApicBase);
            Assert.Equal((uint)Ap << 24, v.Apic.ReadRegister(0x20));
            AssertInitState(v);
        },
        ["RUNNABLE + INIT with APIC_BASE.BSP=1 -> RUNNABLE at F000:FFF0; a later SIPI is discarded"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            v.Apic.WriteApicBase(0xFEE0_0900);
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertInitState(v);
            Send(vm, 0, Sipi(0x44), Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertInitState(v); // invariant 11: the SIPI did not move it
            Assert.Equal(1, v.SipiDrops);
        },
        ["RUNNABLE (reset BSP, vCPU 0) + INIT -> RUNNABLE at F000:FFF0"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[0];
            v.Core.SetReal(0, 0x8000, 0);
            Send(vm, 2, InitAssert, 0);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertInitState(v);
            Assert.Equal(1, v.InitResets);
        },
        ["RUNNABLE + SIPI -> RUNNABLE, discarded, RIP unchanged"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            v.Core.State->Rip = 0x1234;
            Send(vm, 0, Sipi(0x50), Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            Assert.Equal(0x1234UL, v.Core.State->Rip);
            Assert.Equal(ParkVector << 8, v.Core.State->Cs.Selector);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(1, v.SipiDrops);
            Assert.Equal(0, v.Apic.Pending.Bits);
        },
        ["RUNNABLE + SIPI through the run loop -> dropped at vcpu_enter_guest, guest continues"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            Send(vm, 0, Sipi(0x50), Ap);
            RunIdle(v);
            Assert.Equal(1, v.SipiDrops);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(0x55, Mem8(vm, Marker));
            Assert.Equal(MpState.Halted, v.MpState);
        },
        // ---- HALTED ----
        ["HALTED + NMI -> RUNNABLE (woken), NMI taken"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            Assert.Equal(MpState.Halted, v.MpState);
            Send(vm, 0, Nmi, Ap);
            RunIdle(v);
            Assert.Equal(1, v.Wakeups);
            Assert.Equal(0x77, Mem8(vm, Marker + 2));
        },
        ["HALTED + fixed IPI with IF=1 -> RUNNABLE, interrupt taken"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            v.Core.SetReal(0, 0xA000, 0x7000);
            vm.Ram.Write(0xA000, [0xFB, 0x90, 0xF4, 0xEB, 0xFE]); // sti; nop; hlt; jmp $
            v.SetMpState(MpState.Runnable);
            SoftwareEnable(v.Apic);
            RunIdle(v);
            Assert.Equal(MpState.Halted, v.MpState);
            Send(vm, 0, Fixed(FixedVector), Ap);
            RunIdle(v);
            Assert.Equal(1, v.Wakeups);
            Assert.Equal(0x77, Mem8(vm, Marker + 2));
            Assert.True(IsrBit(v.Apic, FixedVector));
        },
        ["HALTED + fixed IPI with IF=0 -> stays HALTED (invariant 14)"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            SoftwareEnable(v.Apic);
            Send(vm, 0, Fixed(FixedVector), Ap);
            Assert.True(IrrBit(v.Apic, FixedVector));
            Assert.False(v.CanProgress);
            Assert.Equal(VcpuExitReason.Yield, v.RunOnce());
            Assert.Equal(MpState.Halted, v.MpState);
            Assert.Equal(0, v.Wakeups);
        },
        ["HALTED (IF=0) + remote read (PV unhalt kick) -> RUNNABLE, execution continues after the HLT"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            Assert.Equal(MpState.Halted, v.MpState);
            Send(vm, 0, RemoteRead, Ap);
            Assert.True(v.PvUnhalted);
            Assert.Equal(MpState.Runnable, v.GetMpState()); // KVM_GET_MP_STATE: RUNNABLE while pv_unhalted is pending
            Assert.Equal(MpState.Halted, v.MpState);
            RunIdle(v);
            Assert.Equal(1, v.Wakeups);
            Assert.Equal(0x66, Mem8(vm, Marker + 1)); // the code after the first HLT ran, then halted again
            Assert.Equal(MpState.Halted, v.MpState);
            Assert.False(v.PvUnhalted);               // cleared on HALTED -> RUNNABLE
            Assert.Contains(KvmPath.PvUnhaltLatched, vm.Vcpus[0].Trace.Snapshot().Select(e => e.Path));
        },
        ["RUNNABLE + remote read, then HLT -> completes as a no-op, pv_unhalted cleared"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            Send(vm, 0, RemoteRead, Ap);
            Assert.True(v.PvUnhalted);
            RunIdle(v);
            Assert.Equal(1, v.HaltNoops);             // the first HLT saw the pending kick
            Assert.Equal(0, v.Wakeups);
            Assert.Equal(0x66, Mem8(vm, Marker + 1));
            Assert.Equal(MpState.Halted, v.MpState);   // the second HLT halts
            Assert.False(v.PvUnhalted);
        },
        ["HALTED + INIT -> INIT_RECEIVED"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            Send(vm, 0, InitAssert, Ap);
            RunIdle(v);
            Assert.Equal(MpState.InitReceived, v.MpState);
            Assert.Equal(2, v.InitResets);
            Assert.Equal(0, v.Wakeups);
            AssertInitState(v);
        },
        ["HALTED + INIT with APIC_BASE.BSP=1 -> RUNNABLE at F000:FFF0"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            v.Apic.WriteApicBase(0xFEE0_0900);
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            AssertInitState(v);
        },
        ["HALTED + SIPI -> RUNNABLE (KVM quirk): SIPI discarded, execution continues after the HLT"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            StartAp(vm, Ap);
            RunIdle(v);
            Assert.Equal(MpState.Halted, v.MpState);
            Send(vm, 0, Sipi(0x70), Ap);
            Assert.True(v.CanProgress);
            RunIdle(v);
            Assert.Equal(1, v.Wakeups);
            Assert.Equal(1, v.SipiDrops);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(0x66, Mem8(vm, Marker + 1)); // the code after the first HLT ran
            Assert.Equal(ParkVector << 8, v.Core.State->Cs.Selector);
            Assert.Contains(KvmPath.WokeFromHalt, v.Trace.Snapshot().Select(e => e.Path));
        },
        ["HALTED (via SET_MP_STATE) + SIPI -> RUNNABLE at the same CS:IP"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            // CS:IP = 0:8007, just after the park code's first HLT (mov [0x9000],0x55 is 5 bytes, cli, hlt).
            v.Core.SetReal(0, 0x8007, 0);
            v.SetMpState(MpState.Halted);
            Send(vm, 0, Sipi(0x70), Ap);
            RunIdle(v);
            Assert.Equal(0x66, Mem8(vm, Marker + 1));
            Assert.Equal(0, Mem8(vm, Marker));
            Assert.Equal(0, v.SipiStarts);
            Assert.Equal(1, v.SipiDrops);
            Assert.Equal(1, v.Wakeups);
            Assert.Equal(0, v.Core.State->Cs.Selector);
        },
        // ---- INIT de-assert ----
        ["INIT de-assert is inert in every state"] = () =>
        {
            foreach (var state in new[] { MpState.Uninitialized, MpState.InitReceived, MpState.Runnable, MpState.Halted })
            {
                using var vm = NewParkVm();
                var v = vm.Vcpus[Ap];
                if (state != MpState.Uninitialized) v.SetMpState(state);
                v.Core.State->ExitRequest = 0;
                v.Trace.Clear();
                vm.Vcpus[0].Trace.Clear();
                Send(vm, 0, InitDeassert, Ap);
                Send(vm, 0, InitDeassert | 0x40000, 0);        // self shorthand de-assert: inert too
                Send(vm, 0, InitDeassert | 0x80000, 0);        // broadcast de-assert
                Assert.Equal(0, v.Apic.Pending.Bits);
                Assert.Equal(0, v.Core.State->ExitRequest);    // no kick
                Assert.Equal(0, v.Trace.Recorded);             // nothing at the target
                Assert.Equal(state, v.MpState);
                Assert.Equal(state, v.GetMpState());
                Assert.Equal(0, v.InitResets);
                Assert.Contains(KvmPath.InitDeassertIgnored, vm.Vcpus[0].Trace.Snapshot().Select(e => e.Path));
            }
        },
        // ---- SET_MP_STATE ----
        ["SET_MP_STATE X -> X for every valid X, with no register change"] = () =>
        {
            foreach (var state in new[] { MpState.Runnable, MpState.Uninitialized, MpState.InitReceived, MpState.Halted })
            {
                using var vm = NewParkVm();
                var v = vm.Vcpus[Ap];
                v.Core.SetReal(0x1234, 0x42, 0);
                v.SetMpState(state);
                Assert.Equal(state, v.GetMpState());
                Assert.Equal(0x42UL, v.Core.State->Rip);
                Assert.Equal(0x1234, v.Core.State->Cs.Selector);
                Assert.Equal(0, v.InitResets);
            }
        },
        ["SET_MP_STATE SIPI_RECEIVED -> GET returns RUNNABLE at the stored vector (invariant 20)"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, Sipi(0x3C), Ap); // stores the vector; dropped in UNINITIALIZED
            Assert.Equal(MpState.Uninitialized, v.GetMpState());
            v.SetMpState(MpState.SipiReceived);
            Assert.Equal(MpState.Runnable, v.GetMpState());
            Assert.Equal(0x3C00, v.Core.State->Cs.Selector);
            Assert.Equal(0UL, v.Core.State->Rip);
            Assert.Equal(0, v.InitResets);
        },
        ["SET_MP_STATE with a value x86 rejects -> error, state unchanged"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            foreach (int bad in new[] { 5, 6, 7, 8, 9, 10, -1 })
                Assert.Throws<ArgumentException>(() => v.SetMpState((MpState)bad));
            Assert.Equal(MpState.Uninitialized, v.GetMpState());
        },
        // ---- NMI in wait-for-SIPI (invariant 13) ----
        ["INIT_RECEIVED + NMI: not injected before SIPI; NMI sent after INIT is taken after SIPI"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, Nmi, Ap);
            Send(vm, 0, InitAssert, Ap); // NMI before INIT: discarded by the reset
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Assert.Equal(0, v.Core.State->NmiPending);
            Send(vm, 0, Nmi, Ap);        // NMI after INIT: stays queued
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Assert.Equal(1, v.Core.State->NmiPending);
            Send(vm, 0, Sipi(ParkVector), Ap);
            RunIdle(v);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(0x77, Mem8(vm, Marker + 2)); // injected through the real-mode IVT
        },
        ["INIT_RECEIVED + remote read (PV unhalt kick) in a deterministic turn: RunOnce returns, still waiting for SIPI"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, RemoteRead, Ap);   // pv_unhalted is a wake event (kvm_vcpu_has_events) but starts nothing
            var t = Task.Run(() => v.RunOnce());
            bool returned = t.Wait(TimeSpan.FromSeconds(5));
            if (!returned) { vm.Stop(); t.Wait(TimeSpan.FromSeconds(5)); }
            Assert.True(returned, "RunOnce of a wait-for-SIPI vCPU with a pending PV kick never returned in deterministic mode");
            Assert.Equal(MpState.InitReceived, v.MpState);
            Send(vm, 0, Sipi(ParkVector), Ap);
            RunIdle(v);
            Assert.Equal(1, v.SipiStarts);
            Assert.False(v.PvUnhalted);    // cleared on the way to RUNNABLE
            Assert.Equal(0x55, Mem8(vm, Marker));
        },
        ["INIT_RECEIVED + NMI in a deterministic turn: RunOnce returns (spin recorded, no hang)"] = () =>
        {
            using var vm = NewParkVm();
            var v = vm.Vcpus[Ap];
            Send(vm, 0, InitAssert, Ap);
            Assert.Equal(MpState.InitReceived, v.GetMpState());
            Send(vm, 0, Nmi, Ap);
            var t = Task.Run(() => v.RunOnce());
            bool returned = t.Wait(TimeSpan.FromSeconds(5));
            if (!returned) { vm.Stop(); t.Wait(TimeSpan.FromSeconds(5)); }
            Assert.True(returned, "RunOnce of a wait-for-SIPI vCPU with a queued NMI never returned in deterministic mode");
            Assert.Equal(MpState.InitReceived, v.MpState);
            Assert.True(v.NmiWaitSpins >= 1);
        },
    };

    public static TheoryData<string> Names => new(Rows.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Transition(string row) => Rows[row]();
}
