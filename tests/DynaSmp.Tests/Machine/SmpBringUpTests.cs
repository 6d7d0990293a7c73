using DynaSmp.Jit;
using DynaSmp.Machine;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Tests.Machine;

/// <summary>The whole INIT/SIPI path through real vCPU threads: every AP is reset once and started once,
/// and the trace shows the KVM paths of kvm-semantics.md §7 for each AP.</summary>
public class SmpBringUpTests
{
    static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline) { if (condition()) return true; Thread.Sleep(1); }
        return condition();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(16)]
    [InlineData(64)]
    public void Every_AP_comes_online_once(int vcpus)
    {
        using var vm = TestGuests.BringUpVm(vcpus);
        vm.Start();
        bool done = WaitUntil(() => vm.Vcpus[0].MpState == MpState.Halted || vm.StopRequested, TimeSpan.FromSeconds(30));
        vm.Join();
        Assert.True(done, "the BSP did not finish");
        Assert.Equal(VmExitKind.Stopped, vm.ExitKind);
        Assert.Equal((uint)(vcpus - 1), TestGuests.ReadCounter(vm));
        foreach (var v in vm.Vcpus.Skip(1))
        {
            Assert.Equal(1, v.InitResets);
            Assert.Equal(1, v.SipiStarts);
            Assert.Equal(MpState.Halted, v.MpState);
            var paths = v.Trace.Snapshot().Select(e => e.Path).ToList();
            Assert.Contains(KvmPath.InitAccepted, paths);
            Assert.Contains(KvmPath.SipiAccepted, paths);
        }
        // The sender's ring explains every IPI: per AP an INIT latched, a de-assert ignored, two SIPIs latched.
        var sent = vm.Vcpus[0].Trace.Snapshot();
        for (int ap = 1; ap < vcpus && sent.Count < 1000; ap++)
        {
            var toAp = sent.Where(e => e.Target == ap).Select(e => e.Path).ToList();
            // The second SIPI either latches or, if the first is still pending, coalesces into its bit.
            Assert.Equal([KvmPath.InitLatched, KvmPath.InitDeassertIgnored, KvmPath.SipiLatched], toAp.Take(3));
            Assert.Contains(toAp[3], new[] { KvmPath.SipiLatched, KvmPath.SipiCoalesced });
            Assert.Equal(4, toAp.Count);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(12345)]
    public void Deterministic_mode_replays_exactly(int seed)
    {
        long Steps()
        {
            using var vm = TestGuests.BringUpVm(8, seed: seed);
            vm.Start();
            Assert.True(WaitUntil(() => vm.StopRequested, TimeSpan.FromSeconds(30)), "deterministic run did not end");
            vm.Join();
            Assert.Equal(7u, TestGuests.ReadCounter(vm));
            return vm.ScheduleSteps * 1_000_000 + vm.Vcpus.Sum(v => (long)v.Trace.Recorded);
        }
        Assert.Equal(Steps(), Steps());
    }
}
