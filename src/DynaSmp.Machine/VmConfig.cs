using DynaSmp.Jit;

namespace DynaSmp.Machine;

/// <summary>What to build a <see cref="Vm"/> with.</summary>
public sealed record VmConfig
{
    public int Vcpus { get; init; } = 4;
    public ulong MemoryBytes { get; init; } = 256UL << 20;
    /// <summary>Offer x2APIC (CPUID.1:ECX[21], APIC_BASE.EXTD). Needed beyond 255 vCPUs.</summary>
    public bool X2Apic { get; init; }
    public JitOptions Jit { get; init; } = JitOptions.Default;
    /// <summary>Present KVM's paravirtual CPUID leaves and kvm-clock (<see cref="KvmClock"/>), as a KVM guest sees them.
    /// The CLI turns it on for Linux guests (`run` of a bzImage unless --no-kvmclock, `boot --kernel`); off here, so
    /// multiboot guests and tests see plain hardware. The RCU stalls it once showed on idle vCPUs no longer occur
    /// (2026-12-07: ten Debian 6.1 boots at --smp 1, 4 and 8, none).</summary>
    public bool KvmParavirt { get; init; }
    /// <summary>Back guest RAM with transparent huge pages (<see cref="GuestRam"/>). The CLI turns it on for Linux guests,
    /// which touch most of their RAM; off here, since a guest that touches a few scattered pages would hold 2 MiB for each.</summary>
    public bool HugePages { get; init; }
    /// <summary>KVM's bsp_vcpu_id: this vCPU starts RUNNABLE with APIC_BASE.BSP; the others UNINITIALIZED.</summary>
    public int BspId { get; init; }
    public bool Trace { get; init; } = true;
    public int TraceCapacity { get; init; } = 1024;
    /// <summary>Trace rings keep their first TraceCapacity events rather than the last (EventTrace.KeepFirst).</summary>
    public bool TraceKeepsFirst { get; init; }
    /// <summary>Host stack per vCPU thread: small, so a thousand vCPUs reserve little (committed on touch).</summary>
    public int ThreadStackBytes { get; init; } = 256 * 1024;
    /// <summary>Null: free-running, one host thread per vCPU. A seed: all vCPUs interleaved on one thread
    /// in a seed-chosen order, replayable exactly.</summary>
    public int? DeterministicSeed { get; init; }
    /// <summary>Upper bound of adaptive halt polling (KVM's halt_poll_ns); 0 disables it.</summary>
    public long HaltPollMaxNs { get; init; } = 50_000;

    /// <summary>vCPU threads run at a lower host priority (nice 5 on Linux), so the thread that enforces a deadline
    /// is not queued behind every spinning vCPU when vCPUs outnumber host cores.</summary>
    public bool LowerVcpuPriority { get; init; } = true;

    /// <summary>Guest instructions a vCPU runs per turn in deterministic mode.</summary>
    public ulong DeterministicSlice { get; init; } = 2000;

    /// <summary>Test-only: break one KVM rule on purpose (storm checker tests). Internal: no CLI flag reaches it.</summary>
    internal Storm.BrokenRule BrokenRule { get; init; }

    public void Validate()
    {
        if (Vcpus < 1) throw new ArgumentException("a VM needs at least one vCPU");
        if (Vcpus > 1024) throw new ArgumentException($"{Vcpus} vCPUs: at most 1024 per VM");
        if (Vcpus > 255 && !X2Apic) throw new ArgumentException($"{Vcpus} vCPUs need x2APIC (xAPIC IDs stop at 254; 255 is broadcast)");
        if (MemoryBytes < (2UL << 20) || (MemoryBytes & 0xFFF) != 0) throw new ArgumentException("guest memory must be at least 2 MiB and a multiple of 4 KiB");
        if (MemoryBytes > (MachineInfo.IoApicBase)) throw new ArgumentException("guest memory above 4 GiB - 20 MiB is not supported (RAM must end below the APIC pages)");
        if (BspId < 0 || BspId >= Vcpus) throw new ArgumentException("the BSP must be one of the vCPUs");
    }
}
