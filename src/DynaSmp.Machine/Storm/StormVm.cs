using System.Diagnostics;
using DynaSmp.Jit;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Machine.Storm;

/// <summary>What one storm VM is built from. Equal options and seeds give equal deterministic runs.</summary>
public sealed record StormVmOptions
{
    public int Cpus { get; init; } = 4;
    public int Seed { get; init; } = 1;
    public bool Deterministic { get; init; } = true;
    /// <summary>Stop after this many events (guest ICR writes + host injections); long.MaxValue: no limit.</summary>
    public long Events { get; init; } = 10_000;
    public bool X2Apic { get; init; } = true;
    public int TraceCapacity { get; init; } = 4096;
    public JitOptions Jit { get; init; } = JitOptions.Default;
    /// <summary>Test-only: one broken KVM rule (see <see cref="Storm.BrokenRule"/>).</summary>
    internal BrokenRule BrokenRule { get; init; }
}

/// <summary>
/// One storm VM: the storm guest, the checker, and the host-side injector that plays the VMM (KVM_NMI,
/// KVM_SIGNAL_MSI-style fixed interrupts, INIT/SIPI to running, halted and wait-for-SIPI vCPUs, and in deterministic mode
/// KVM_SET_MP_STATE and a BSP reset through KVM_GET_MP_STATE + KVM_SET_REGS). Deterministic: injections happen between
/// scheduler turns from a generator seeded by the VM seed, so they replay too.
/// </summary>
public sealed class StormVm : IDisposable
{
    public const int HostTypes = 6;
    public static readonly string[] GuestTypeNames = ["fixed", "lowest", "smi", "remote_read", "nmi", "init", "startup", "extint", "init_deassert"];
    public static readonly string[] HostTypeNames = ["host_nmi", "host_fixed", "host_init", "host_sipi", "host_set_mp_state", "host_bsp_reset"];

    public StormVmOptions Options { get; }
    public Vm Vm { get; }
    public StormChecker Checker { get; }
    /// <summary>The injector's own ring (track "host" in traces).</summary>
    public EventTrace HostTrace { get; }
    public readonly long[] HostInjections = new long[HostTypes];
    readonly Random _hostRng;
    long _turns;

    public StormVm(StormVmOptions o)
    {
        Options = o;
        Vm = new Vm(new VmConfig
        {
            Vcpus = o.Cpus, MemoryBytes = StormGuest.MemoryBytes, X2Apic = o.X2Apic, Jit = o.Jit,
            TraceCapacity = o.TraceCapacity, DeterministicSeed = o.Deterministic ? o.Seed : null,
            DeterministicSlice = 500, BrokenRule = o.BrokenRule,
        });
        HostTrace = new EventTrace(o.Cpus, o.TraceCapacity, Vm.Vcpus[0].Core);
        StormGuest.Load(Vm, (uint)o.Seed * 2654435761u);
        Checker = new StormChecker(Vm) { EventsSoFar = Events };
        _hostRng = new Random(o.Seed ^ 0x5EED);
        if (o.Deterministic) Vm.AfterTurn = AfterTurn;
    }

    public long Events()
    {
        long n = 0;
        foreach (var v in Vm.Vcpus) foreach (var c in v.IpisSent) n += c;
        foreach (var c in HostInjections) n += c;
        return n;
    }

    public long Turns => _turns;

    void AfterTurn(Vcpu v)
    {
        _turns++;
        Checker.Ran(v);
        if (_hostRng.Next(64) == 0) Inject(_hostRng, deterministic: true);
        Checker.CheckAll(_turns);
        if ((_turns & 63) == 0 && Events() >= Options.Events) Vm.Stop(VmExitKind.Stopped, "storm event budget reached");
    }

    /// <summary>One VMM action on a random vCPU. Free-running (<paramref name="deterministic"/> false) it only routes
    /// events (safe from any thread, as KVM_NMI / KVM_SIGNAL_MSI are); mp_state and register changes need the vCPU out
    /// of KVM_RUN, which only the deterministic scheduler guarantees here.</summary>
    public void Inject(Random rng, bool deterministic)
    {
        var vcpus = Vm.Vcpus;
        int bspId = Vm.Config.BspId;
        int action = rng.Next(deterministic ? HostTypes : 4);
        var target = vcpus[rng.Next(vcpus.Length)];
        if (action is 2 or 3 or 4 && target.Id == bspId)
        {
            if (vcpus.Length == 1) return;
            target = vcpus[(bspId + 1 + rng.Next(vcpus.Length - 1)) % vcpus.Length];
        }
        switch (action)
        {
            case 0: Vm.HostDeliver(target, new IcrWrite(0x400, (uint)target.Id), HostTrace); break;
            case 1: Vm.HostDeliver(target, new IcrWrite((uint)(StormGuest.FixedBase + rng.Next(16)), (uint)target.Id), HostTrace); break;
            case 2: Vm.HostDeliver(target, new IcrWrite(0xC500, (uint)target.Id), HostTrace); break;
            case 3: Vm.HostDeliver(target, new IcrWrite(0x600u | StormGuest.StartupVector, (uint)target.Id), HostTrace); break;
            case 4:
                // KVM_SET_MP_STATE as a VMM uses it: wait-for-SIPI (or a pending SIPI with the storm's vector) only for a
                // vCPU whose registers are already in the INIT/RESET state, HALTED for a running one, RUNNABLE for a halted
                // one. (SIPI_RECEIVED on a running vCPU would start it with CR0.PE still set, as KVM would.)
                switch (target.MpState)
                {
                    case MpState.InitReceived or MpState.Uninitialized:
                        if (rng.Next(2) == 0 || target.Apic.Pending.StoredVector != StormGuest.StartupVector) target.SetMpState(MpState.InitReceived);
                        else target.SetMpState(MpState.SipiReceived);
                        break;
                    case MpState.Runnable: target.SetMpState(MpState.Halted); break;
                    default: target.SetMpState(MpState.Runnable); break;
                }
                break;
            case 5:
            {
                // BSP reset as a VMM does it: INIT, KVM_GET_MP_STATE (accepts it), then KVM_SET_REGS/SREGS to the
                // trampoline because this machine has no firmware at the reset vector.
                var bsp = vcpus[bspId];
                // Only when the INIT was latched: a BSP whose APIC is hardware-disabled (mid xAPIC<->x2APIC toggle) drops
                // it, and restarting it anyway left it in the trampoline with a dead APIC, halted for good (a 300 s storm).
                var path = Vm.HostDeliver(bsp, new IcrWrite(0xC500, (uint)bspId), HostTrace);
                if (path is KvmPath.InitLatched or KvmPath.InitCancelledSipi && bsp.GetMpState() == MpState.Runnable && Checker.Violation == null)
                {
                    bsp.Core.SetReal(StormGuest.TrampolineSegment, 0, 0);
                    bsp.Core.ExceptionIntercept = 0;
                    Checker.OnHostStart(bspId);
                }
                break;
            }
        }
        HostInjections[action]++;
    }

    /// <summary>Every retained event (vCPU rings and the host ring), in clock order.</summary>
    public List<TraceEvent> Trace()
    {
        var all = TraceText.Merged(Vm);
        all.AddRange(HostTrace.Snapshot());
        return all.OrderBy(e => e.Timestamp).ToList();
    }

    public void Dispose() => Vm.Dispose();
}
