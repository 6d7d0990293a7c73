using DynaSmp.Jit.Cpu;
using DynaSmp.Machine.Apic;

namespace DynaSmp.Machine;

/// <summary>
/// Event counters of one vCPU for `--stats`: what a performance regression in guest code moves (exits, IPIs, halts,
/// TLB flushes, phases the guest marks). Plain fields written by the thread that runs the vCPU (no Interlocked, no
/// allocation after construction); the one exception, <see cref="IpiReceived"/>, is written by senders on the IPI
/// path, which is already a chain of interlocked operations. In deterministic mode one thread runs every vCPU, so
/// every count is exact and identical run to run.
/// </summary>
public sealed class VcpuStats
{
    /// <summary>Phases recorded per vCPU; later marks are counted in <see cref="PhasesDropped"/> only.</summary>
    public const int MaxPhases = 64;

    /// <summary>Returns of the CPU core to the run loop, indexed by <see cref="ExitReason"/>.</summary>
    public readonly long[] Exits = new long[Enum.GetValues<ExitReason>().Length];
    /// <summary>Port I/O and MMIO accesses: the exits a hardware hypervisor takes for them (KVM_EXIT_IO, APIC access).</summary>
    public long PortIo, LapicMmio, OtherMmio;
    /// <summary>IPIs this vCPU sent (ICR writes, one per routed target set) and was sent, indexed by <see cref="DeliveryMode"/>.</summary>
    public readonly long[] IpiSent = new long[8], IpiReceived = new long[8];
    /// <summary>VM clock time (<see cref="Vm.Clock"/>: host, or virtual when deterministic) the first INIT reached this vCPU (0: none),
    /// and the whole VM's retired instructions then.</summary>
    public long FirstInitAt;
    public ulong FirstInitVmInstructions;
    /// <summary>The whole VM's retired instructions when this vCPU first halted after its SIPI (an AP "online").</summary>
    public ulong OnlineVmInstructions;

    public readonly uint[] PhaseNumbers = new uint[MaxPhases];
    public readonly ulong[] PhaseInstructions = new ulong[MaxPhases];
    public readonly long[] PhaseTimes = new long[MaxPhases];
    public int Phases, PhasesDropped;

    /// <summary>The VM-clock time of the first mark of <paramref name="phase"/>, or 0 if the guest never marked it.</summary>
    public long FirstPhaseTime(uint phase)
    {
        for (int k = 0; k < Phases; k++) if (PhaseNumbers[k] == phase) return PhaseTimes[k];
        return 0;
    }

    internal void RecordPhase(uint phase, ulong retired, long now)
    {
        if (Phases == MaxPhases) { PhasesDropped++; return; }
        PhaseNumbers[Phases] = phase;
        PhaseInstructions[Phases] = retired;
        PhaseTimes[Phases] = now;
        Phases++;
    }
}
