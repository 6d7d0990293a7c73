using DynaSmp.Machine;
using DynaSmp.Machine.Guests;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Tests.Machine;

/// <summary>An AP's first HLT after its SIPI wakes the next UNINITIALIZED vCPU to poll for its INIT (Vcpu.ExpectInit), a
/// host-scheduling shortcut for in-order bring-up. It must stay invisible to the guest and to the KVM_RUN sequence of
/// kvm-semantics.md: one -EAGAIN return per AP (the INIT's), no extra mp_state transitions, every AP online.</summary>
public class BringUpPollTests
{
    [Fact]
    public void Each_ap_online_readies_the_next_one_and_the_kvm_run_sequence_stays_as_it_was()
    {
        const int Cpus = 8;
        var pc = new Pc(new VmConfig { Vcpus = Cpus, MemoryBytes = 64UL << 20, TraceCapacity = 1024 });
        pc.LoadMultiboot(BuiltinGuest.Build(new BuiltinGuestOptions()));
        pc.Vm.Start();
        Assert.True(pc.Vm.WaitForExit(TimeSpan.FromSeconds(120)), "the guest did not finish in 120 s");
        pc.Vm.Join();
        Assert.Equal(1, pc.Vm.ExitStatus);
        foreach (var ap in pc.Vm.Vcpus.Skip(1))
        {
            // AP 1 is started by the BSP alone; every later one was asked to poll by the AP before it.
            if (ap.Id >= 2) Assert.True(ap.BringUpPolls >= 1, $"vCPU {ap.Id} never polled for its INIT");
            Assert.Equal(1, ap.AgainReturns);
            var own = ap.Trace.Snapshot();
            Assert.Single(own, e => e.Path == KvmPath.UninitializedAgain);
            Assert.Single(own, e => e.Path == KvmPath.InitAccepted && e.After == MpState.InitReceived);
            Assert.Single(own, e => e.Path == KvmPath.SipiAccepted && e.After == MpState.Runnable);
        }
        // The last AP has no successor to ready, and the poll never reaches the BSP.
        Assert.Equal(0, pc.Vm.Vcpus[0].BringUpPolls);
    }

    [Fact]
    public void A_poll_that_no_init_ends_leaves_the_vcpu_asleep_and_uninitialized()
    {
        using var vm = TestGuests.BringUpVm(2);
        vm.Ram.Write(TestGuests.BspCode, [0xF4, 0xEB, 0xFD]); // the BSP only halts: no INIT ever comes
        vm.Start();
        var ap = vm.Vcpus[1];
        Assert.True(SpinWait.SpinUntil(() => ap.Sleeping, TimeSpan.FromSeconds(10)));
        Assert.True(ap.ExpectInit());
        Assert.True(SpinWait.SpinUntil(() => ap.BringUpPolls == 1, TimeSpan.FromSeconds(10)));
        Assert.True(SpinWait.SpinUntil(() => ap.Sleeping, TimeSpan.FromSeconds(10)));
        Thread.Sleep(5); // well past the 200 us poll: it ended empty and the thread went back to sleep
        Assert.Equal(0, ap.BringUpPollHits);
        Assert.Equal(0, ap.AgainReturns);
        Assert.Equal(MpState.Uninitialized, ap.MpState);
        Assert.DoesNotContain(ap.Trace.Snapshot(), e => e.Path == KvmPath.UninitializedAgain);
        vm.Stop();
        vm.Join();
    }
}
