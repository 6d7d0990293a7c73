using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>System instructions (Intel SDM Vol. 3A chapter 2 and the Vol. 2 instruction pages): MOV to/from
/// control and debug registers, CLTS, LMSW, SMSW, INVLPG, WBINVD/INVD, RDPMC, RDMSR/WRMSR.</summary>
/// <remarks>Debug registers are stored and read back with their fixed bits, but breakpoints are not
/// armed: DR7 enables have no effect except GD (general detect).</remarks>
public static unsafe partial class Interp
{
    /// <summary>CR0 bits that exist; writes to other bits of CR0[31:0] are ignored (ET is hardwired to 1 on
    /// P6-family and later processors, SDM 2.5).</summary>
    const ulong Cr0Defined = Cr0.PE | Cr0.MP | Cr0.EM | Cr0.TS | Cr0.NE | Cr0.WP | Cr0.AM | Cr0.NW | Cr0.CD | Cr0.PG;

    /// <summary>Physical address width reported by CPUID 80000008h (CR3 and MTRR bits above it are reserved).</summary>
    const int MaxPhysAddr = 40;
    const ulong PhysAddrReserved = ~0UL << MaxPhysAddr;

    const ulong Dr6Fixed1 = 0xFFFF_0FF0, Dr6Writable = 0xE00F; // B0-B3, BD, BS, BT
    const ulong Dr7Fixed1 = 0x400, Dr7Writable = 0xFFFF_23FF;  // L0-G3, LE, GE, GD, R/W0-LEN3
    const ulong Dr7GD = 1 << 13, Dr6BD = 1 << 13;

    static bool TryExecuteSystem(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Mov:
                if (i.Op0Kind != OpKind.Register || i.Op1Kind != OpKind.Register) return false;
                if (i.Op0Register.IsCR()) { WriteControlRegister(c, i.Op0Register, ReadReg(s, i.Op1Register)); return true; }
                if (i.Op1Register.IsCR()) { WriteReg(s, i.Op0Register, ReadControlRegister(s, i.Op1Register)); return true; }
                if (i.Op0Register.IsDR()) { MovToDebugRegister(s, i.Op0Register, ReadReg(s, i.Op1Register)); return true; }
                if (i.Op1Register.IsDR()) { WriteReg(s, i.Op0Register, ReadDebugRegister(s, i.Op1Register)); return true; }
                return false;
            case Mnemonic.Clts:
                RequireCpl0(s);
                s->Cr0 &= ~Cr0.TS;
                return true;
            case Mnemonic.Lmsw:
            {
                // Loads PE, MP, EM and TS from the source's low four bits; it can set PE but never clear it (SDM LMSW).
                RequireCpl0(s);
                ulong src = ReadOp(c, i, 0, 2) & 0xF;
                ulong value = (s->Cr0 & ~0xFUL) | src | (s->Cr0 & Cr0.PE);
                WriteCr0(c, value);
                return true;
            }
            case Mnemonic.Smsw:
                // Not privileged (UMIP is not offered). A register destination gets CR0 at the operand size;
                // a memory destination is always 16 bits (SDM SMSW).
                if (i.Op0Kind == OpKind.Register) WriteReg(s, i.Op0Register, s->Cr0);
                else Mem.Write16(c, MemAddress(s, i, 2, write: true), (ushort)s->Cr0);
                return true;
            case Mnemonic.Invlpg:
                RequireCpl0(s);
                c.FlushTranslations(TlbFlushKind.Page, MemAddressUnchecked(s, i)); // INVLPG accesses nothing
                return true;
            case Mnemonic.Wbinvd: case Mnemonic.Invd:
                RequireCpl0(s); // no caches are modelled
                return true;
            case Mnemonic.Rdpmc:
            {
                // CR4.PCE lets any CPL read counters (SDM RDPMC). Counters 0 and 1 (the P6-family PerfCtr0/1)
                // exist and never count; CPUID leaf 0Ah reports no architectural performance monitoring.
                if ((s->Cr0 & Cr0.PE) != 0 && s->Cpl != 0 && (s->Cr4 & Cr4.PCE) == 0) throw CpuFault.GP();
                if ((uint)s->Gpr[1] > 1) throw CpuFault.GP();
                s->Gpr[0] = 0; s->Gpr[2] = 0;
                return true;
            }
            case Mnemonic.Rdmsr:
            {
                RequireCpl0(s);
                ulong v = ReadMsr(c, (uint)s->Gpr[1]);
                s->Gpr[0] = (uint)v; s->Gpr[2] = v >> 32;
                return true;
            }
            case Mnemonic.Wrmsr:
                RequireCpl0(s);
                WriteMsr(c, (uint)s->Gpr[1], ((ulong)(uint)s->Gpr[2] << 32) | (uint)s->Gpr[0]);
                return true;
            default: return false;
        }
    }

    static void RequireCpl0(CpuState* s)
    {
        if (s->Cpl != 0) throw CpuFault.GP();
    }

    /// <summary>CR4.TSD makes RDTSC/RDTSCP privileged outside CPL 0 (SDM RDTSC).</summary>
    static void CheckTsd(CpuState* s)
    {
        if ((s->Cr4 & Cr4.TSD) != 0 && (s->Cr0 & Cr0.PE) != 0 && s->Cpl != 0) throw CpuFault.GP();
    }


    // ---- Control registers (SDM Vol. 3A 2.5, MOV—Move to/from Control Registers) ----

    /// <summary>CR0, CR2, CR3, CR4, and CR8 in 64-bit mode; any other CRn is #UD (before the CPL check).</summary>
    static bool IsControlRegister(CpuState* s, Register cr) =>
        cr is Register.CR0 or Register.CR2 or Register.CR3 or Register.CR4 || (cr == Register.CR8 && Is64BitMode(s));

    static ulong ReadControlRegister(CpuState* s, Register cr)
    {
        if (!IsControlRegister(s, cr)) throw CpuFault.UD();
        RequireCpl0(s);
        return cr switch
        {
            Register.CR0 => s->Cr0,
            Register.CR2 => s->Cr2,
            Register.CR3 => s->Cr3,
            Register.CR4 => s->Cr4,
            Register.CR8 when Is64BitMode(s) => s->Cr8,
            _ => throw CpuFault.UD(),
        };
    }

    /// <summary>MOV to CRn. The source is the full GPR (64 bits in 64-bit mode, else 32).</summary>
    public static void WriteControlRegister(CpuCore c, Register cr, ulong value)
    {
        CpuState* s = c.State;
        if (!IsControlRegister(s, cr)) throw CpuFault.UD();
        RequireCpl0(s);
        switch (cr)
        {
            case Register.CR0: WriteCr0(c, value); return;
            case Register.CR2: s->Cr2 = value; return;
            case Register.CR3: WriteCr3(c, value); return;
            case Register.CR4: WriteCr4(c, value); return;
            case Register.CR8 when Is64BitMode(s):
                // CR8 is the task-priority register: bits 63:4 reserved (SDM 2.5 / 10.8.6.1).
                if ((value & ~0xFUL) != 0) throw CpuFault.GP();
                s->Cr8 = value;
                return;
            default: throw CpuFault.UD();
        }
    }

    static void WriteCr0(CpuCore c, ulong value)
    {
        CpuState* s = c.State;
        if ((value >> 32) != 0) throw CpuFault.GP(); // bits 63:32 are reserved in 64-bit mode
        value = (value & Cr0Defined) | Cr0.ET;
        if ((value & Cr0.PG) != 0 && (value & Cr0.PE) == 0) throw CpuFault.GP();
        if ((value & Cr0.NW) != 0 && (value & Cr0.CD) == 0) throw CpuFault.GP();
        ulong old = s->Cr0, efer = s->Efer;
        if ((old & Cr0.PG) == 0 && (value & Cr0.PG) != 0 && (efer & Efer.LME) != 0)
        {
            // Activating IA-32e mode (SDM 10.8.5): needs CR4.PAE and must not happen with CS.L = 1.
            if ((s->Cr4 & Cr4.PAE) == 0 || (s->Cs.Attributes & SegmentCache.Long) != 0) throw CpuFault.GP();
            efer |= Efer.LMA;
        }
        else if ((old & Cr0.PG) != 0 && (value & Cr0.PG) == 0)
        {
            // Leaving IA-32e mode is done from compatibility mode; clearing PG in 64-bit mode is #GP.
            if (Is64BitMode(s)) throw CpuFault.GP();
            efer &= ~Efer.LMA;
        }
        s->Cr0 = value;
        s->Efer = efer;
        c.OnPrivilegeOrModeChange();
        c.Mmu.OnControlRegisterWrite(0, old, value);
    }

    static void WriteCr3(CpuCore c, ulong value)
    {
        CpuState* s = c.State;
        // In IA-32e mode CR3 bits above MAXPHYADDR are reserved (bit 63 would need CR4.PCIDE); outside it the
        // register is 32 bits wide and the source a 32-bit GPR.
        if ((s->Efer & Efer.LMA) != 0) { if ((value & PhysAddrReserved) != 0) throw CpuFault.GP(); }
        else value = (uint)value;
        // PAE paging outside IA-32e mode loads the four PDPTEs on MOV CR3; a reserved bit there is #GP (SDM 4.4.1).
        if ((s->Cr0 & Cr0.PG) != 0 && (s->Cr4 & Cr4.PAE) != 0 && (s->Efer & Efer.LMA) == 0 && !c.Mmu.PdptesAreValid(value))
            throw CpuFault.GP();
        ulong old = s->Cr3;
        s->Cr3 = value;
        c.Mmu.OnControlRegisterWrite(3, old, value);
    }

    static void WriteCr4(CpuCore c, ulong value)
    {
        CpuState* s = c.State;
        if ((value & ~Cr4.Supported) != 0) throw CpuFault.GP();
        if ((s->Efer & Efer.LMA) != 0 && (value & Cr4.PAE) == 0) throw CpuFault.GP(); // PAE stays on in IA-32e mode
        ulong old = s->Cr4;
        s->Cr4 = value;
        c.OnPrivilegeOrModeChange();
        c.Mmu.OnControlRegisterWrite(4, old, value);
    }

    // ---- Debug registers (SDM Vol. 3A 18.2) ----

    /// <summary>DR index after the CR4.DE aliasing rule (DR4/DR5 are DR6/DR7 when CR4.DE = 0; CR4.DE is not
    /// offered, so they always alias), the CPL check and the DR7.GD general-detect fault.</summary>
    static int DebugRegisterIndex(CpuState* s, Register dr)
    {
        int n = dr - Register.DR0;
        if (n > 7) throw CpuFault.UD();
        RequireCpl0(s);
        if (n is 4 or 5) n += 2;
        if ((s->Dr[7] & Dr7GD) != 0)
        {
            // General detect (SDM 18.2.4): #DB fault before the access, with DR6.BD set and DR7.GD cleared
            // so the handler can use the debug registers.
            s->Dr[6] |= Dr6BD;
            s->Dr[7] &= ~Dr7GD;
            throw new CpuFault(Vector.DB);
        }
        return n;
    }

    static ulong ReadDebugRegister(CpuState* s, Register dr) => s->Dr[DebugRegisterIndex(s, dr)];

    static void MovToDebugRegister(CpuState* s, Register dr, ulong value)
    {
        int n = DebugRegisterIndex(s, dr);
        switch (n)
        {
            case 6:
                if ((value >> 32) != 0) throw CpuFault.GP();
                s->Dr[6] = (value & Dr6Writable) | Dr6Fixed1;
                return;
            case 7:
                if ((value >> 32) != 0) throw CpuFault.GP();
                s->Dr[7] = (value & Dr7Writable) | Dr7Fixed1;
                return;
            default:
                s->Dr[n] = value;
                return;
        }
    }

    // ---- Model-specific registers ----

    /// <summary>IA32_MTRRCAP: 8 variable ranges, fixed ranges supported, write-combining supported, no SMRR.</summary>
    const ulong MtrrCapValue = Msr.VariableMtrrs | (1 << 8) | (1 << 10);

    /// <summary>IA32_FEATURE_CONTROL reads as locked (bit 0) with VMX and SMX disabled, as firmware leaves it
    /// on a machine without virtualization; a locked register rejects writes with #GP (SDM Vol. 3C 23.7).</summary>
    const ulong FeatureControlValue = 1;

    /// <summary>RDMSR semantics: the machine's hook first, then the core's table; unknown MSRs are #GP(0).</summary>
    public static ulong ReadMsr(CpuCore c, uint index)
    {
        CpuState* s = c.State;
        if (c.MsrReadHook is { } hook && hook(index) is ulong hooked) return hooked;
        switch (index)
        {
            case Msr.Tsc: return c.ReadTsc();
            case Msr.ApicBase: return s->ApicBase;
            case Msr.FeatureControl: return FeatureControlValue;
            case Msr.BiosSignId: return 0; // no microcode loaded
            case Msr.PlatformId: return 0;  // platform ID 0 (bits 52:50): what Linux's microcode driver reads
            case Msr.MtrrCap: return MtrrCapValue;
            case Msr.ArchCapabilities: return CpuidModel.ArchCapabilities; // read-only: a write is #GP, as on hardware
            case Msr.SpecCtrl: return s->SpecCtrl; // IA32_PRED_CMD is write-only: its read is #GP
            case Msr.SysenterCs: return s->SysenterCs;
            case Msr.SysenterEsp: return s->SysenterEsp;
            case Msr.SysenterEip: return s->SysenterEip;
            case Msr.MiscEnable: return s->MiscEnable;
            case Msr.Pat: return s->Pat;
            case Msr.MtrrDefType: return s->MtrrDefType;
            case Msr.Efer: return s->Efer;
            case Msr.Star: return s->Star;
            case Msr.Lstar: return s->Lstar;
            case Msr.Cstar: return s->Cstar;
            case Msr.Sfmask: return s->Sfmask;
            case Msr.FsBase: return s->Fs.Base;
            case Msr.GsBase: return s->Gs.Base;
            case Msr.KernelGsBase: return s->KernelGsBase;
            case Msr.TscAux: return s->TscAux;
        }
        if (index - Msr.MtrrPhysBase0 < 2 * Msr.VariableMtrrs) return s->MtrrVar[index - Msr.MtrrPhysBase0];
        int fixedSlot = FixedMtrrSlot(index);
        if (fixedSlot >= 0) return s->MtrrFixed[fixedSlot];
        throw CpuFault.GP(); // includes the x2APIC range 800h-8FFh when the machine does not own it
    }

    /// <summary>WRMSR semantics: the machine's hook first, then the core's table. Reserved bits, non-canonical
    /// addresses and invalid memory types are #GP(0) (SDM Vol. 4 and WRMSR); state is changed only on success.</summary>
    public static void WriteMsr(CpuCore c, uint index, ulong value)
    {
        CpuState* s = c.State;
        if (c.MsrWriteHook is { } hook && hook(index, value)) return;
        switch (index)
        {
            case Msr.Tsc:
                // The TSC becomes value now: ReadTsc = VM clock + offset.
                s->TscOffset = value - (ulong)c.ClockNow();
                return;
            case Msr.SpecCtrl:
                // IBRS(0), STIBP(1) and BHI_DIS_S(10), the bits CPUID leaf 7 enumerates; the rest (SSBD included: not
                // enumerated) are reserved, #GP as KVM makes them. The emulated core does not speculate, so either setting is honoured.
                if ((value & ~CpuidModel.SpecCtrlBits) != 0) throw CpuFault.GP();
                s->SpecCtrl = value;
                return;
            case Msr.PredCmd:
                // IBPB(0): there is no branch predictor to flush; other bits are reserved.
                if ((value & ~1UL) != 0) throw CpuFault.GP();
                return;
            case Msr.ApicBase:
            {
                // Bits 7:0, 9 and those above MAXPHYADDR are reserved; EXTD (bit 10) needs x2APIC support
                // and EN (bit 11) with it (SDM Vol. 3A 11.12.1, "x2APIC mode" state table).
                const ulong extd = 1 << 10, en = 1 << 11;
                if ((value & (0x2FFUL | PhysAddrReserved)) != 0) throw CpuFault.GP();
                if ((value & extd) != 0 && (!c.Cpuid.X2Apic || (value & en) == 0)) throw CpuFault.GP();
                s->ApicBase = value;
                return;
            }
            case Msr.BiosSignId: return; // writing 0 before CPUID is how software reads the microcode revision
            case Msr.SysenterCs: s->SysenterCs = value; return;
            case Msr.SysenterEsp: s->SysenterEsp = Canonical(value); return;
            case Msr.SysenterEip: s->SysenterEip = Canonical(value); return;
            case Msr.MiscEnable:
                // BTS/PEBS unavailable (bits 11, 12) are read-only; other bits are stored and have no effect.
                s->MiscEnable = (value & ~CpuCore.MiscEnableDefault) | CpuCore.MiscEnableDefault;
                return;
            case Msr.Pat:
                // Each of the eight entries must be UC, WC, WT, WP, WB or UC- (SDM Vol. 3A 13.12.2).
                for (int k = 0; k < 8; k++)
                    if (!IsPatType((byte)(value >> (8 * k)))) throw CpuFault.GP();
                s->Pat = value;
                return;
            case Msr.MtrrDefType:
                // Type in bits 7:0, FE bit 10, E bit 11; everything else reserved (SDM Vol. 3A 13.11.2.1).
                if ((value & ~0xCFFUL) != 0 || !IsMtrrType((byte)value)) throw CpuFault.GP();
                s->MtrrDefType = value;
                return;
            case Msr.Efer: WriteEfer(c, value); return;
            case Msr.Star: s->Star = value; return;
            case Msr.Lstar: s->Lstar = Canonical(value); return;
            case Msr.Cstar: s->Cstar = Canonical(value); return;
            case Msr.Sfmask:
                if ((value >> 32) != 0) throw CpuFault.GP(); // IA32_FMASK bits 63:32 are reserved
                s->Sfmask = value;
                return;
            case Msr.FsBase: s->Fs.Base = Canonical(value); return;
            case Msr.GsBase: s->Gs.Base = Canonical(value); return;
            case Msr.KernelGsBase: s->KernelGsBase = Canonical(value); return;
            case Msr.TscAux:
                if ((value >> 32) != 0) throw CpuFault.GP();
                s->TscAux = value;
                return;
        }
        if (index - Msr.MtrrPhysBase0 < 2 * Msr.VariableMtrrs)
        {
            uint k = index - Msr.MtrrPhysBase0;
            // PHYSBASEn: type in 7:0, 11:8 reserved; PHYSMASKn: 10:0 reserved, V in bit 11. Both: bits above
            // MAXPHYADDR reserved (SDM Vol. 3A 13.11.2.3).
            bool ok = (k & 1) == 0
                ? (value & (0xF00UL | PhysAddrReserved)) == 0 && IsMtrrType((byte)value)
                : (value & (0x7FFUL | PhysAddrReserved)) == 0;
            if (!ok) throw CpuFault.GP();
            s->MtrrVar[k] = value;
            return;
        }
        int fixedSlot = FixedMtrrSlot(index);
        if (fixedSlot >= 0)
        {
            for (int k = 0; k < 8; k++)
                if (!IsMtrrType((byte)(value >> (8 * k)))) throw CpuFault.GP();
            s->MtrrFixed[fixedSlot] = value;
            return;
        }
        throw CpuFault.GP(); // unknown, read-only (MTRRCAP, FEATURE_CONTROL locked), or x2APIC without the machine
    }

    static ulong Canonical(ulong v) => IsCanonical(v) ? v : throw CpuFault.GP();

    /// <summary>Memory types valid in MTRRs: UC 0, WC 1, WT 4, WP 5, WB 6.</summary>
    static bool IsMtrrType(byte t) => t is 0 or 1 or 4 or 5 or 6;

    /// <summary>PAT entries additionally allow UC- (7).</summary>
    static bool IsPatType(byte t) => t is 0 or 1 or 4 or 5 or 6 or 7;

    /// <summary>CpuState.MtrrFixed slot of a fixed-range MTRR: 64K_00000, 16K_80000, 16K_A0000, 4K_C0000..4K_F8000.</summary>
    static int FixedMtrrSlot(uint index) => index switch
    {
        Msr.MtrrFix64K_00000 => 0,
        Msr.MtrrFix16K_80000 => 1,
        Msr.MtrrFix16K_A0000 => 2,
        >= Msr.MtrrFix4K_C0000 and <= Msr.MtrrFix4K_C0000 + 7 => 3 + (int)(index - Msr.MtrrFix4K_C0000),
        _ => -1,
    };

    /// <summary>IA32_EFER (SDM Vol. 3A 2.2.1, 10.8.5): SCE, LME, NXE writable; LMA is the processor's (a written
    /// LMA is ignored, as KVM does); changing LME while paging is enabled is #GP(0).</summary>
    static void WriteEfer(CpuCore c, ulong value)
    {
        CpuState* s = c.State;
        if ((value & ~(Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE)) != 0) throw CpuFault.GP();
        if ((s->Cr0 & Cr0.PG) != 0 && ((value ^ s->Efer) & Efer.LME) != 0) throw CpuFault.GP();
        ulong old = s->Efer;
        value = (value & ~Efer.LMA) | (old & Efer.LMA);
        s->Efer = value;
        c.OnPrivilegeOrModeChange();
        c.Mmu.OnEferWrite(old, value);
    }
}
