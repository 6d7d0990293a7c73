using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Fast system calls: SYSCALL/SYSRET (IA32_STAR, LSTAR, FMASK) and SYSENTER/SYSEXIT (IA32_SYSENTER_CS/ESP/EIP).
/// The CS and SS caches they load are fixed flat descriptors, not read from the GDT (SDM instruction pages).</summary>
public static unsafe partial class Interp
{
    // Packed attributes (SegmentCache format) of the fixed segments: type 11 / 3, S = 1, P = 1, G = 1.
    const uint CodeAttr = 0x9B | SegmentCache.Granularity, StackAttr = 0x93 | SegmentCache.Granularity | SegmentCache.DefaultBig;
    const uint Dpl3 = 3 << 5;

    static bool TryExecuteSyscall(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Syscall: Syscall(c); return true;
            case Mnemonic.Sysret: case Mnemonic.Sysretq: Sysret(c, i); return true;
            case Mnemonic.Sysenter: Sysenter(c); return true;
            case Mnemonic.Sysexit: case Mnemonic.Sysexitq: Sysexit(c, i); return true;
        }
        return false;
    }

    static SegmentCache FlatSegment(ushort selector, uint attributes) => SegmentCache.Flat(selector, attributes);

    /// <summary>SYSCALL (Intel): 64-bit mode only; RCX = return RIP, R11 = RFLAGS, RFLAGS &amp;= ~FMASK,
    /// CS = STAR[47:32] &amp; FFFCh, SS = that + 8, CPL 0.</summary>
    static void Syscall(CpuCore c)
    {
        CpuState* s = c.State;
        // The CPUID model is GenuineIntel: SYSCALL outside 64-bit mode is #UD, so IA32_CSTAR is never used.
        if (!Is64BitMode(s) || (s->Efer & Efer.SCE) == 0) throw CpuFault.UD();
        ulong flags = Flags.Get(s);
        ushort sel = (ushort)((s->Star >> 32) & 0xFFFC);
        s->Gpr[1] = s->Rip;
        s->Gpr[11] = flags;
        Flags.Set(s, (flags & ~s->Sfmask & ~RFlags.RF) | RFlags.Reserved1);
        s->Cs = FlatSegment(sel, CodeAttr | SegmentCache.Long);
        s->Ss = FlatSegment((ushort)(sel + 8), StackAttr);
        s->Rip = s->Lstar;
        c.OnPrivilegeOrModeChange();
    }

    /// <summary>SYSRET: REX.W returns to 64-bit code at RCX with CS = STAR[63:48] + 16; otherwise to compatibility
    /// mode at ECX with CS = STAR[63:48]. RFLAGS = (R11 &amp; 3C7FD7h) | 2; SS = STAR[63:48] + 8; all RPL 3.</summary>
    static void Sysret(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (!Is64BitMode(s) || (s->Efer & Efer.SCE) == 0) throw CpuFault.UD();
        if (s->Cpl != 0) throw CpuFault.GP();
        bool to64 = i.Mnemonic == Mnemonic.Sysretq;
        ulong rip = to64 ? s->Gpr[1] : (uint)s->Gpr[1];
        if (to64 && !IsCanonical(rip)) throw CpuFault.GP();
        ushort b = (ushort)(s->Star >> 48);
        ushort cs = (ushort)((to64 ? b + 16 : b) | 3);
        Flags.Set(s, (s->Gpr[11] & 0x3C7FD7) | RFlags.Reserved1);
        s->Cs = FlatSegment(cs, CodeAttr | Dpl3 | (to64 ? SegmentCache.Long : SegmentCache.DefaultBig));
        s->Ss = FlatSegment((ushort)((b + 8) | 3), StackAttr | Dpl3);
        s->Rip = rip;
        c.OnPrivilegeOrModeChange();
    }

    /// <summary>SYSENTER: CS = SYSENTER_CS &amp; FFFCh, SS = CS + 8, (R/E)SP and (R/E)IP from the MSRs, VM and IF cleared.</summary>
    static void Sysenter(CpuCore c)
    {
        CpuState* s = c.State;
        if ((s->Cr0 & Cr0.PE) == 0 || (s->SysenterCs & 0xFFFC) == 0) throw CpuFault.GP();
        bool lma = IsLongModeActive(s);
        ushort sel = (ushort)(s->SysenterCs & 0xFFFC);
        Flags.Set(s, Flags.Get(s) & ~(RFlags.VM | RFlags.IF));
        s->Cs = FlatSegment(sel, CodeAttr | (lma ? SegmentCache.Long : SegmentCache.DefaultBig));
        s->Ss = FlatSegment((ushort)(sel + 8), StackAttr);
        s->Gpr[4] = lma ? s->SysenterEsp : (uint)s->SysenterEsp;
        s->Rip = lma ? s->SysenterEip : (uint)s->SysenterEip;
        c.OnPrivilegeOrModeChange();
    }

    /// <summary>SYSEXIT: to 64-bit code (REX.W) with CS = SYSENTER_CS + 32, else 32-bit code with CS = SYSENTER_CS + 16;
    /// SS = CS + 8; RSP = RCX, RIP = RDX; RPL 3.</summary>
    static void Sysexit(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if ((s->Cr0 & Cr0.PE) == 0 || (s->SysenterCs & 0xFFFC) == 0 || s->Cpl != 0) throw CpuFault.GP();
        bool to64 = i.Mnemonic == Mnemonic.Sysexitq;
        ulong rip = to64 ? s->Gpr[2] : (uint)s->Gpr[2];
        ulong rsp = to64 ? s->Gpr[1] : (uint)s->Gpr[1];
        if (to64 && (!IsCanonical(rip) || !IsCanonical(rsp))) throw CpuFault.GP();
        ushort cs = (ushort)((s->SysenterCs + (to64 ? 32UL : 16UL)) | 3);
        s->Cs = FlatSegment(cs, CodeAttr | Dpl3 | (to64 ? SegmentCache.Long : SegmentCache.DefaultBig));
        s->Ss = FlatSegment((ushort)(cs + 8), StackAttr | Dpl3);
        s->Gpr[4] = rsp;
        s->Rip = rip;
        c.OnPrivilegeOrModeChange();
    }
}
