using System.Text;

namespace DynaSmp.Jit.Cpu;

/// <summary>
/// What CPUID reports. It tells the truth: only features the core implements are set. The machine
/// supplies the topology (initial APIC ID, logical processor count) and whether x2APIC is offered.
/// </summary>
public sealed unsafe class CpuidModel
{
    public uint ApicId { get; set; }
    public uint LogicalProcessors { get; set; } = 1;
    public bool X2Apic { get; set; }
    public bool Apic { get; set; }
    /// <summary>Report a KVM hypervisor (CPUID.1:ECX.HYPERVISOR, leaves 40000000h-40000001h) offering kvm-clock, as a
    /// KVM guest sees it; the machine implements the clock MSRs.</summary>
    public bool KvmParavirt { get; set; }

    public const uint KvmSignatureLeaf = 0x4000_0000, KvmFeaturesLeaf = 0x4000_0001;
    // KVM_FEATURE_CLOCKSOURCE2 (bit 3: MSRs 4b564d00h/4b564d01h), KVM_FEATURE_PV_UNHALT (bit 7: the KVM_HC_KICK_CPU
    // hypercall, which wakes a vCPU halted with interrupts off; Linux then uses paravirtual spinlocks, whose waiters halt
    // instead of spinning) and KVM_FEATURE_CLOCKSOURCE_STABLE_BIT (bit 24).
    public const uint KvmFeatures = 1u << 3 | 1u << 7 | 1u << 24;
    static readonly uint[] KvmSignature = VendorWords("KVMKVMKVM\0\0\0");

    const uint MaxBasicLeaf = 0xB, MaxExtendedLeaf = 0x8000_0008;
    // Family 6, model 0x3A-like signature; only the signature format matters to guests.
    public const uint Signature = 0x0003_06A9;

    // Leaf 1 EDX. FPU(0): the whole x87 (Interpreter/Interp.X87*.cs, Fpu/), differentially tested against the host.
    // PSE(3) TSC(4, with CR4.TSD) MSR(5) PAE(6) MCE(7: CR4.MCE accepted, no machine check is ever raised)
    // CX8(8) SEP(11) MTRR(12) PGE(13) CMOV(15) PAT(16) FXSR(24) SSE(25) SSE2(26).
    // Paging (PSE/PAE/PGE/NX) and SYSENTER/SYSCALL come with the MMU and segmentation work.
    // APIC(9) when the machine has one; HTT(28) with more than one logical processor.
    const uint Leaf1Edx = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 11)
        | (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 24) | (1u << 25) | (1u << 26);
    // Leaf 1 ECX: SSE3(0: Interp.Sse3.cs and FISTTP in the x87 files; differential groups Sse3Move and Sse4Float)
    // SSSE3(9: the XMM forms, Interp.Ssse3.cs, differential group Ssse3; the MMX forms are #UD like all of MMX, which is
    // not reported) CX16(13) SSE4.1(19: Interp.Sse41.cs; groups Sse41Integer, Sse41MoveInsertExtract, Sse4Float)
    // SSE4.2(20: Interp.Sse42.cs; group Sse42) POPCNT(23); x2APIC(21) when enabled. MONITOR(3) stays clear, as KVM
    // reports it by default: MONITOR/MWAIT are #UD. CpuidFeatureTests holds each set bit to its instructions.
    public const uint Leaf1Ecx = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23);
    // TSC-DEADLINE(24) with a LAPIC, as KVM reports it with its in-kernel APIC: Linux then programs the LAPIC timer
    // with one WRMSR instead of calibrating it against the PIT for 100 ms at boot (Lapic.TscDeadline).
    const uint TscDeadlineBit = 1u << 24;
    // Leaf 0x80000001 EDX: SYSCALL(11) NX(20) RDTSCP(27) LM(29); ECX: LAHF/SAHF in 64-bit mode(0) LZCNT(5).
    const uint Ext1Edx = (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29);
    const uint Ext1Ecx = (1u << 0) | (1u << 5);
    // Leaf 7 EBX: BMI1(3) (TZCNT, ANDN, BEXTR, BLSI, BLSMSK, BLSR).
    const uint Leaf7Ebx = 1u << 3;
    // Leaf 7 EDX: SERIALIZE(14) IBRS/IBPB(26: IA32_SPEC_CTRL and IA32_PRED_CMD) STIBP(27) ARCH_CAPABILITIES(29), the MSRs
    // below; KVM offers each to a guest on a host that has it. With SERIALIZE Linux's sync_core() is one instruction
    // instead of an IRET to itself (a stack frame, a tier-0 IRETQ and a block exit), which code patching does 100k times
    // in a Debian boot.
    const uint Leaf7Edx = (1u << 14) | (1u << 26) | (1u << 27) | (1u << 29);

    // Leaf 7 subleaf 2 EDX: BHI_CTRL(4), IA32_SPEC_CTRL.BHI_DIS_S. Linux since 2024 treats every eIBRS part as open to
    // branch history injection, BHI_NO or not; with BHI_CTRL it sets that bit once instead of running a 5x7-branch
    // clearing loop at every system call.
    const uint Leaf7Sub2Edx = 1u << 4;

    /// <summary>IA32_SPEC_CTRL bits a guest may set: IBRS(0), STIBP(1), BHI_DIS_S(10).</summary>
    public const ulong SpecCtrlBits = (1UL << 0) | (1UL << 1) | (1UL << 10);

    /// <summary>IA32_ARCH_CAPABILITIES (MSR 0x10A, SDM Vol. 4 Table 2-2): the "not affected" bits of the speculative-execution
    /// flaws, as KVM synthesizes them for a guest on a host without those bugs (kvm_get_arch_capabilities). An emulated
    /// CPU has none of them: no speculation, no shared buffers. RDCL_NO(0) SKIP_VMENTRY_L1DFLUSH(3) SSB_NO(4) MDS_NO(5)
    /// PSCHANGE_MC_NO(6) TAA_NO(8) SBDR_SSDP_NO(13) FBSDP_NO(14) PSDP_NO(15) PBRSB_NO(24) GDS_NO(26) RFDS_NO(27) ITS_NO(62);
    /// and IBRS_ALL(1: enhanced IBRS, which a KVM guest on an Intel host since Ice Lake sees) with BHI_NO(20).</summary>
    /// <remarks>Without it Linux takes a GenuineIntel family-6 guest for Meltdown-affected and turns on page-table isolation
    /// (two CR3 loads, each a TLB flush here, per entry from and return to user mode), VERW buffer clearing and ITS return
    /// thunks, where a guest of QEMU/KVM on an unaffected host reports "Not affected". A Debian boot to init, with few
    /// user-mode transitions, was no faster for it (farm-bench 1.01x, 6 pairs). Without IBRS_ALL Linux chooses retpolines
    /// for Spectre v2: every indirect call goes through a CALL/MOV/RET thunk and a return thunk, two extra blocks and an
    /// indirect exit each; with it, "Enhanced IBRS" leaves plain indirect calls.</remarks>
    public const ulong ArchCapabilities = (1UL << 0) | (1UL << 1) | (1UL << 3) | (1UL << 4) | (1UL << 5) | (1UL << 6) | (1UL << 8)
        | (1UL << 13) | (1UL << 14) | (1UL << 15) | (1UL << 20) | (1UL << 24) | (1UL << 26) | (1UL << 27) | (1UL << 62);

    /// <summary>Processor brand string, leaves 80000002h-80000004h (48 bytes, NUL padded).</summary>
    public const string Brand = "DynaSmp virtual CPU";
    static readonly uint[] BrandWords = BrandDwords(Brand);

    static uint[] BrandDwords(string brand)
    {
        var bytes = new byte[48];
        Encoding.ASCII.GetBytes(brand, bytes);
        var words = new uint[12];
        for (int k = 0; k < 12; k++) words[k] = BitConverter.ToUInt32(bytes, 4 * k);
        return words;
    }

    static readonly uint[] Vendor = VendorWords("GenuineIntel");

    static uint[] VendorWords(string v)
    {
        var b = Encoding.ASCII.GetBytes(v);
        return [BitConverter.ToUInt32(b, 0), BitConverter.ToUInt32(b, 4), BitConverter.ToUInt32(b, 8)];
    }

    public void Execute(CpuState* s)
    {
        uint leaf = (uint)s->Gpr[0], sub = (uint)s->Gpr[1];
        Query(leaf, sub, out uint a, out uint b, out uint c, out uint d);
        s->Gpr[0] = a; s->Gpr[3] = b; s->Gpr[1] = c; s->Gpr[2] = d;
    }

    public void Query(uint leaf, uint sub, out uint a, out uint b, out uint c, out uint d)
    {
        a = b = c = d = 0;
        if (KvmParavirt && leaf is KvmSignatureLeaf or KvmFeaturesLeaf)
        {
            if (leaf == KvmSignatureLeaf) { a = KvmFeaturesLeaf; b = KvmSignature[0]; c = KvmSignature[1]; d = KvmSignature[2]; }
            else a = KvmFeatures;
            return;
        }
        if (leaf >= 0x8000_0000 ? leaf > MaxExtendedLeaf : leaf > MaxBasicLeaf)
            leaf = MaxBasicLeaf; // Intel: out-of-range leaves return the highest basic leaf
        switch (leaf)
        {
            case 0: a = MaxBasicLeaf; b = Vendor[0]; d = Vendor[1]; c = Vendor[2]; break;
            case 1:
                a = Signature;
                b = (ApicId << 24) | (Math.Min(LogicalProcessors, 255u) << 16) | (8u << 8); // CLFLUSH line = 8 qwords
                c = Leaf1Ecx | (X2Apic ? 1u << 21 : 0) | (Apic ? TscDeadlineBit : 0) | (KvmParavirt ? 1u << 31 : 0);
                d = Leaf1Edx | (Apic ? 1u << 9 : 0) | (LogicalProcessors > 1 ? 1u << 28 : 0);
                break;
            case 4: CacheLeaf(sub, out a, out b, out c, out d); break;
            // ARAT (EAX bit 2): the LAPIC timer keeps running in every idle state, as this emulated one does and as QEMU's
            // -cpu max says. Without it Linux treats the LAPIC timer as stopping in deep C-states and leans on the
            // HPET/PIT broadcast device.
            case 6: a = 1u << 2; break;
            case 7:
                if (sub == 0) { a = 2; b = Leaf7Ebx; d = Leaf7Edx; } // EAX: the highest subleaf
                else if (sub == 2) d = Leaf7Sub2Edx;
                break;
            case 0xB:
                // Topology: level 0 = SMT (one thread per core), level 1 = core (all processors in one package).
                if (sub == 0) { a = 0; b = 1; c = 0x100; }
                else if (sub == 1) { a = (uint)Math.Max(1, 32 - int.LeadingZeroCount((int)Math.Max(LogicalProcessors - 1, 1))); b = LogicalProcessors; c = 0x201; }
                else c = sub;
                d = ApicId;
                break;
            case 0x8000_0000: a = MaxExtendedLeaf; break;
            case 0x8000_0001: c = Ext1Ecx; d = Ext1Edx; break;
            case 0x8000_0002: case 0x8000_0003: case 0x8000_0004:
            {
                int k = (int)(leaf - 0x8000_0002) * 4;
                a = BrandWords[k]; b = BrandWords[k + 1]; c = BrandWords[k + 2]; d = BrandWords[k + 3];
                break;
            }
            case 0x8000_0008: a = 0x3028; break; // 40-bit physical, 48-bit linear addresses
        }
    }

    /// <summary>Leaf 4, deterministic cache parameters (SDM CPUID): 32 KiB 8-way L1D and L1I, 256 KiB 8-way L2
    /// per core, 8 MiB 16-way L3 shared by the package; 64-byte lines. Nothing is cached: guests size
    /// buffers from these. EAX[31:26] = cores per package - 1, EAX[25:14] = logical processors sharing - 1.</summary>
    void CacheLeaf(uint sub, out uint a, out uint b, out uint c, out uint d)
    {
        a = b = c = d = 0;
        uint type, level, ways, sets, sharing = 0;
        switch (sub)
        {
            case 0: type = 1; level = 1; ways = 8; sets = 64; break;
            case 1: type = 2; level = 1; ways = 8; sets = 64; break;
            case 2: type = 3; level = 2; ways = 8; sets = 512; break;
            case 3: type = 3; level = 3; ways = 16; sets = 8192; sharing = Math.Clamp(LogicalProcessors, 1u, 4096u) - 1; break;
            default: return; // type 0: no more caches
        }
        uint cores = Math.Clamp(LogicalProcessors, 1u, 64u) - 1;
        a = type | (level << 5) | (1u << 8) | (sharing << 14) | (cores << 26);
        b = ((ways - 1) << 22) | (64 - 1); // one partition, 64-byte line
        c = sets - 1;
        d = level == 3 ? 1u << 1 : 0; // L3 inclusive of lower levels
    }
}
