using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>x87 dispatch, control instructions, and FXSAVE/FXRSTOR (SDM Vol. 1 chapter 8 and 10.5). Values and
/// arithmetic are in Interp.X87.Arith.cs, FSTENV/FSAVE in Interp.X87.Env.cs, the software float in Fpu/.</summary>
/// <remarks>The register file is kept physically: FpuRegs[10 * p] is physical register p, ST(i) is p = (TOP + i) mod 8,
/// and FpuTag is the abridged tag (bit p set = not empty); the full tag word is derived from the contents when
/// stored (FSTENV/FSAVE). Exceptions are delayed as on hardware: an unmasked one sets ES/B, and the next waiting x87
/// instruction raises #MF if CR0.NE = 1 (with NE = 0 the FERR# signal is not modelled).</remarks>
public static unsafe partial class Interp
{
    const ushort FswExceptionBits = 0x3F, FswES = 1 << 7, FswB = 1 << 15;

    static bool TryExecuteX87(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Wait:
                // WAIT faults with #NM only when both MP and TS are set (SDM Vol. 3A Table 2-1).
                if ((s->Cr0 & (Cr0.MP | Cr0.TS)) == (Cr0.MP | Cr0.TS)) throw new CpuFault(Vector.NM);
                CheckPendingX87(s);
                return true;
            case Mnemonic.Fninit: case Mnemonic.Finit:
                X87Enter(s, i);
                s->FpuControl = 0x37F; // all exceptions masked, 64-bit precision, round to nearest
                s->FpuStatus = 0;
                s->FpuTag = 0; // all registers empty
                s->FpuOpcode = s->FpuCs = s->FpuDs = 0;
                s->FpuIp = s->FpuDp = 0;
                return true;
            case Mnemonic.Fnstsw: case Mnemonic.Fstsw:
                X87Enter(s, i);
                if (i.Op0Kind == OpKind.Register) WriteReg(s, Register.AX, s->FpuStatus);
                else Mem.Write16(c, MemAddress(s, i, 2, write: true), s->FpuStatus);
                return true;
            case Mnemonic.Fnstcw: case Mnemonic.Fstcw:
                X87Enter(s, i);
                Mem.Write16(c, MemAddress(s, i, 2, write: true), s->FpuControl);
                return true;
            case Mnemonic.Fldcw:
                X87Enter(s, i);
                X87LoadControlWord(s, Mem.Read16(c, MemAddress(s, i)));
                return true;
            case Mnemonic.Fnclex: case Mnemonic.Fclex:
                X87Enter(s, i);
                s->FpuStatus &= unchecked((ushort)~(FswExceptionBits | 1 << 6 | FswES | FswB)); // also SF
                return true;
            case Mnemonic.Fxsave: case Mnemonic.Fxsave64:
                Fxsave(c, i);
                return true;
            case Mnemonic.Fxrstor: case Mnemonic.Fxrstor64:
                Fxrstor(c, i);
                return true;
            default:
                if (!IsX87Escape(i)) return false;
                X87Enter(s, i);
                if (!TryExecuteX87Value(c, i)) throw CpuFault.UD();
                return true;
        }
    }

    /// <summary>An x87 instruction: legacy opcode D8h-DFh (ESC). Iced reports register forms with their
    /// ModRM byte as a two-byte opcode (D8 C0+i is D8C0h).</summary>
    static bool IsX87Escape(in Instruction i)
    {
        var op = i.Code.ToOpCode();
        if (op.Encoding != EncodingKind.Legacy || op.Table != OpCodeTableKind.Normal) return false;
        uint first = op.OpCodeLength == 2 ? op.OpCode >> 8 : op.OpCode;
        return first is >= 0xD8 and <= 0xDF;
    }

    /// <summary>Checks before any x87 instruction: LOCK is #UD; CR0.EM or CR0.TS is #NM; the waiting forms
    /// (FINIT, FSTSW, FSTCW, FCLEX = WAIT + FNxxx) then report a pending unmasked exception.</summary>
    static void X87Enter(CpuState* s, in Instruction i)
    {
        if (i.HasLockPrefix) throw CpuFault.UD();
        if ((s->Cr0 & (Cr0.EM | Cr0.TS)) != 0) throw new CpuFault(Vector.NM);
        if (!IsNonWaitingX87(i.Mnemonic)) CheckPendingX87(s);
    }

    /// <summary>The FNxxx control forms do not check for pending exceptions (SDM Vol. 1 8.3.11); FLDCW, FLDENV
    /// and FRSTOR do not either (they may be how software clears them), like FNOP-class no-ops on a 387+.</summary>
    static bool IsNonWaitingX87(Mnemonic m) => m is Mnemonic.Fninit or Mnemonic.Fnstsw or Mnemonic.Fnstcw or Mnemonic.Fnclex
        or Mnemonic.Fnstenv or Mnemonic.Fnsave or Mnemonic.Fldcw or Mnemonic.Fldenv or Mnemonic.Frstor
        or Mnemonic.Fneni or Mnemonic.Fndisi or Mnemonic.Fnsetpm or Mnemonic.Frstpm;

    /// <summary>FCW as loaded: reserved bits 7 and 13-15 read as 0, bit 6 as 1 (observed on hardware; SDM Vol. 1 Figure 8-6
    /// marks them reserved).</summary>
    static ushort X87ControlWord(ushort v) => (ushort)((v & 0x1F3F) | 0x40);

    static void CheckPendingX87(CpuState* s)
    {
        if ((s->FpuStatus & FswES) != 0 && (s->Cr0 & Cr0.NE) != 0) throw new CpuFault(Vector.MF);
    }

    /// <summary>FSW.ES and B summarise the exception flags not masked in FCW (SDM Vol. 1 8.1.3.1).</summary>
    static void UpdateErrorSummary(CpuState* s)
    {
        bool pending = (s->FpuStatus & FswExceptionBits & ~s->FpuControl) != 0;
        s->FpuStatus = pending ? (ushort)(s->FpuStatus | FswES | FswB) : (ushort)(s->FpuStatus & ~(FswES | FswB));
    }

    /// <summary>Checks shared by FXSAVE and FXRSTOR (SDM FXSAVE/FXRSTOR): LOCK or CR0.EM is #UD, CR0.TS is #NM,
    /// a memory operand not 16-byte aligned is #GP(0). Returns the area's linear address.</summary>
    static ulong FxEnter(CpuState* s, in Instruction i, bool write)
    {
        if (i.HasLockPrefix || (s->Cr0 & Cr0.EM) != 0) throw CpuFault.UD();
        if ((s->Cr0 & Cr0.TS) != 0) throw new CpuFault(Vector.NM);
        ulong lin = MemAddress(s, i, 512, write);
        if ((lin & 15) != 0) throw CpuFault.GP();
        return lin;
    }

    /// <summary>FXSAVE m512 (SDM Vol. 1 Table 10-2). REX.W (FXSAVE64) stores 64-bit FPU IP/DP; without it they
    /// are 32-bit offsets followed by the CS/DS selectors. XMM8-15 are stored only in 64-bit mode. XMM and MXCSR
    /// are stored whatever CR4.OSFXSR (an implementation choice the SDM allows). Bytes 464-511 are never written,
    /// nor bytes 288-463 outside 64-bit mode.</summary>
    static void Fxsave(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        ulong a = FxEnter(s, i, write: true);
        bool long64 = Is64BitMode(s);
        int xmmCount = long64 ? 16 : 8;
        // Both pages writable before anything is written, so a fault leaves memory unchanged.
        c.Mmu.Translate(a, MemAccess.Write);
        c.Mmu.Translate(a + (ulong)(160 + 16 * xmmCount) - 1, MemAccess.Write);
        Mem.Write16(c, a + 0, s->FpuControl);
        Mem.Write16(c, a + 2, s->FpuStatus);
        Mem.Write8(c, a + 4, s->FpuTag);
        Mem.Write8(c, a + 5, 0);
        Mem.Write16(c, a + 6, s->FpuOpcode);
        if (i.Mnemonic == Mnemonic.Fxsave64)
        {
            Mem.Write64(c, a + 8, s->FpuIp);
            Mem.Write64(c, a + 16, s->FpuDp);
        }
        else
        {
            Mem.Write32(c, a + 8, (uint)s->FpuIp);
            Mem.Write32(c, a + 12, s->FpuCs);
            Mem.Write32(c, a + 16, (uint)s->FpuDp);
            Mem.Write32(c, a + 20, s->FpuDs);
        }
        Mem.Write32(c, a + 24, s->Mxcsr);
        Mem.Write32(c, a + 28, MxcsrMask);
        for (int r = 0; r < 8; r++)
        {
            ulong slot = a + 32 + (ulong)(16 * r);
            byte* reg = s->FpuRegs + 10 * ((X87Top(s) + r) & 7); // slot r holds ST(r)
            Mem.Write64(c, slot, *(ulong*)reg);
            Mem.Write64(c, slot + 8, *(ushort*)(reg + 8)); // 80-bit value, then 6 reserved zero bytes
        }
        for (int n = 0; n < xmmCount; n++)
        {
            Mem.Write64(c, a + 160 + (ulong)(16 * n), s->Xmm[2 * n]);
            Mem.Write64(c, a + 168 + (ulong)(16 * n), s->Xmm[2 * n + 1]);
        }
    }

    /// <summary>FXRSTOR m512: reads the whole image first, checks MXCSR reserved bits (#GP(0)), then loads.</summary>
    static void Fxrstor(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        ulong a = FxEnter(s, i, write: false);
        int xmmCount = Is64BitMode(s) ? 16 : 8;
        uint mxcsr = Mem.Read32(c, a + 24);
        if ((mxcsr & ~MxcsrMask) != 0) throw CpuFault.GP();
        ushort fcw = Mem.Read16(c, a + 0), fsw = Mem.Read16(c, a + 2), fop = Mem.Read16(c, a + 6);
        byte ftw = Mem.Read8(c, a + 4);
        ulong fip, fdp;
        ushort fcs = 0, fds = 0;
        if (i.Mnemonic == Mnemonic.Fxrstor64)
        {
            fip = Mem.Read64(c, a + 8);
            fdp = Mem.Read64(c, a + 16);
        }
        else
        {
            fip = Mem.Read32(c, a + 8);
            fcs = Mem.Read16(c, a + 12);
            fdp = Mem.Read32(c, a + 16);
            fds = Mem.Read16(c, a + 20);
        }
        byte* regs = stackalloc byte[80];
        for (int r = 0; r < 8; r++)
        {
            ulong slot = a + 32 + (ulong)(16 * r);
            *(ulong*)(regs + 10 * r) = Mem.Read64(c, slot);
            *(ushort*)(regs + 10 * r + 8) = Mem.Read16(c, slot + 8);
        }
        ulong* xmm = stackalloc ulong[32];
        for (int k = 0; k < 2 * xmmCount; k++) xmm[k] = Mem.Read64(c, a + 160 + (ulong)(8 * k));

        s->FpuControl = fcw;
        s->FpuStatus = fsw;
        s->FpuTag = ftw;
        s->FpuOpcode = (ushort)(fop & 0x7FF); // FOP is 11 bits
        s->FpuIp = fip; s->FpuDp = fdp; s->FpuCs = fcs; s->FpuDs = fds;
        int top = (fsw >> 11) & 7;
        for (int r = 0; r < 8; r++)
            for (int k = 0; k < 10; k++) s->FpuRegs[10 * ((top + r) & 7) + k] = regs[10 * r + k];
        s->Mxcsr = mxcsr;
        for (int k = 0; k < 2 * xmmCount; k++) s->Xmm[k] = xmm[k];
    }
}
