using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit;

/// <summary>What a translation flush covers (see <see cref="CpuCore.FlushTranslations"/>).</summary>
public enum TlbFlushKind
{
    /// <summary>Every cached translation, global pages included (CR0.PG/WP, CR4.PAE/PSE/PGE, EFER.NXE changes, INIT).</summary>
    All,
    /// <summary>Every translation except global pages (MOV to CR3, SDM 4.10.4.1).</summary>
    NonGlobal,
    /// <summary>The translations of one linear page (INVLPG).</summary>
    Page,
}

/// <summary>RESET/INIT and the wait-for-SIPI start (SDM Vol. 3A 10.1 "Initialization Overview", Table 10-1),
/// MSR hooks for the machine, and the one place that drops cached translations.</summary>
public sealed unsafe partial class CpuCore
{
    /// <summary>Consulted first by RDMSR: return a value to own the MSR, or null to let the core handle it.
    /// The machine uses it for IA32_APIC_BASE semantics and the x2APIC range 800h-8FFh.</summary>
    public Func<uint, ulong?>? MsrReadHook { get; set; }

    /// <summary>Consulted first by WRMSR: return true when the machine handled the write (it may throw
    /// <see cref="CpuFault"/> for #GP), false to let the core handle it.</summary>
    public Func<uint, ulong, bool>? MsrWriteHook { get; set; }

    /// <summary>VMCALL and VMMCALL: the machine's hypervisor interface. It reads the hypercall number and arguments from the
    /// registers and returns RAX's new value. Null: both are #UD, as outside VMX operation (SDM VMCALL) or without SVM.</summary>
    public Func<ulong>? HypercallHook { get; set; }

    /// <summary>Drops cached linear translations (software TLB and the jump cache, through the MMU).</summary>
    internal void FlushTranslations(TlbFlushKind kind, ulong linear = 0)
    {
        switch (kind)
        {
            case TlbFlushKind.All: Mmu.FlushAll(); break;
            case TlbFlushKind.NonGlobal: Mmu.FlushNonGlobal(); break;
            default: Mmu.FlushPage(linear); break;
        }
    }

    /// <summary>Puts the CPU in the state after RESET (<paramref name="initEvent"/> false) or INIT (true),
    /// SDM Vol. 3A Table 10-1. INIT keeps CR0.CD/NW, x87/SSE state, the TSC, the MTRRs, PAT, MISC_ENABLE,
    /// IA32_APIC_BASE and the SYSCALL/SYSENTER/KERNEL_GS_BASE MSRs, as KVM's kvm_vcpu_reset(init_event=true)
    /// does (docs/kvm-semantics.md); EFER is cleared by both.</summary>
    public void Reset(bool initEvent)
    {
        CpuState* s = State;
        ulong oldCr0 = s->Cr0;
        for (int k = 0; k < 16; k++) s->Gpr[k] = 0;
        s->Gpr[2] = CpuidModel.Signature; // EDX = family/model/stepping
        s->Rip = 0xFFF0;
        Flags.Set(s, RFlags.Reserved1);

        s->Cs = new SegmentCache { Selector = 0xF000, Base = 0xFFFF_0000, Limit = 0xFFFF, Attributes = 0x9B };
        var data = new SegmentCache { Selector = 0, Base = 0, Limit = 0xFFFF, Attributes = 0x93 };
        s->Ds = s->Es = s->Ss = s->Fs = s->Gs = data;
        s->Ldtr = new SegmentCache { Limit = 0xFFFF, Attributes = 0x82 }; // present LDT
        s->Tr = new SegmentCache { Limit = 0xFFFF, Attributes = 0x8B };   // present busy 32-bit TSS
        s->GdtrBase = s->IdtrBase = 0;
        s->GdtrLimit = s->IdtrLimit = 0xFFFF;

        s->Cr0 = initEvent ? Cr0.ET | (oldCr0 & (Cr0.CD | Cr0.NW)) : Cr0.CD | Cr0.NW | Cr0.ET;
        s->Cr2 = s->Cr3 = s->Cr4 = s->Cr8 = 0;
        s->Efer = 0;
        s->SpecCtrl = 0; // KVM clears it on INIT as on RESET
        for (int k = 0; k < 8; k++) s->Dr[k] = 0;
        s->Dr[6] = 0xFFFF_0FF0;
        s->Dr[7] = 0x400;

        if (!initEvent)
        {
            // Power-up x87 state (Table 10-1): FCW 0040h, FSW 0, tag word 5555h (all registers hold +0.0,
            // abridged FFh), pointers 0; XMM 0, MXCSR 1F80h.
            s->FpuControl = 0x40;
            s->FpuStatus = 0;
            s->FpuTag = 0xFF;
            s->FpuOpcode = s->FpuCs = s->FpuDs = 0;
            s->FpuIp = s->FpuDp = 0;
            for (int k = 0; k < 80; k++) s->FpuRegs[k] = 0;
            for (int k = 0; k < 32; k++) s->Xmm[k] = 0;
            s->Mxcsr = 0x1F80;
            // TSC counts from 0 after RESET; MSRs take their power-up values.
            s->TscOffset = 0UL - (ulong)ClockNow();
            s->TscAux = s->KernelGsBase = s->Star = s->Lstar = s->Cstar = s->Sfmask = 0;
            s->SysenterCs = s->SysenterEsp = s->SysenterEip = 0;
            s->Pat = 0x0007_0406_0007_0406;
            s->MiscEnable = MiscEnableDefault;
            // APIC enabled at FEE00000h; the BSP flag (bit 8) belongs to the machine and is kept.
            s->ApicBase = 0xFEE0_0800 | (s->ApicBase & 0x100);
            for (int k = 0; k < 11; k++) s->MtrrFixed[k] = 0;
            for (int k = 0; k < 16; k++) s->MtrrVar[k] = 0;
            s->MtrrDefType = 0;
        }

        ExceptionIntercept = 0;
        s->PendingFault = 0;
        s->PendingErrorCode = 0;
        s->NmiBlocked = 0;
        s->InterruptShadow = 0;
        s->HaltRequested = 0;
        NmisClearedByReset += Interlocked.Exchange(ref s->NmiPending, 0); // KVM drops queued NMIs on INIT
        UpdateMode();
        FlushTranslations(TlbFlushKind.All);
    }

    /// <summary>IA32_MISC_ENABLE after RESET: BTS (bit 11) and PEBS (bit 12) unavailable, as KVM reports.</summary>
    internal const ulong MiscEnableDefault = (1UL << 11) | (1UL << 12);

    /// <summary>Leaves wait-for-SIPI: real mode at CS = VV00h (base VV000h), IP = 0; everything else stays as
    /// INIT left it (SDM Vol. 3A 10.4.4 / docs/kvm-semantics.md section 9).</summary>
    public void StartAtSipi(byte vector)
    {
        CpuState* s = State;
        s->Cs.Selector = (ushort)(vector << 8);
        s->Cs.Base = (ulong)vector << 12;
        s->Rip = 0;
        s->HaltRequested = 0;
        UpdateMode();
        FlushTranslations(TlbFlushKind.All);
    }
}
