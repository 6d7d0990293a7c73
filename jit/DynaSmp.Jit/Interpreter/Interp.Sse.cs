using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE/SSE2 (legacy, non-VEX encodings): dispatch, system checks and XMM operand access.
/// The instructions live in Interp.Sse.Move.cs, Interp.Sse.Integer.cs, Interp.Sse.Shuffle.cs, Interp.Sse.Float.cs and
/// the later extensions' files (Interp.Sse3.cs, Interp.Ssse3.cs, Interp.Sse41.cs, Interp.Sse42.cs).</summary>
/// <remarks>XMM n is Xmm[2n] (low qword) and Xmm[2n+1] (high qword). Values travel as Vector128&lt;ulong&gt;
/// locals, so nothing is allocated.</remarks>
public static unsafe partial class Interp
{
    /// <summary>CR4.OSFXSR (SDM 2.5): the OS supports FXSAVE/FXRSTOR, which enables SSE.</summary>
    public const ulong Cr4OsFxsr = 1 << 9;

    /// <summary>Writable MXCSR bits (FXSAVE's MXCSR_MASK with DAZ): LDMXCSR of anything else is #GP(0).</summary>
    public const uint MxcsrMask = 0xFFFF;

    static bool TryExecuteSse(CpuCore c, in Instruction i)
    {
        // MOVSD is also the string move: only the SSE2 forms are ours.
        if (i.Mnemonic == Mnemonic.Movsd && i.Code is not (Code.Movsd_xmm_xmmm64 or Code.Movsd_xmmm64_xmm)) return false;
        return TrySseMove(c, i) || TryPackedInteger(c, i) || TrySseInteger(c, i) || TrySseShuffle(c, i) || TrySseFloat(c, i)
            || TrySse3(c, i) || TrySse41(c, i) || TrySse42(c, i);
    }

    /// <summary>Checks every legacy SSE instruction makes before touching operands (SDM Vol. 1 13.1.3 / 13.2;
    /// Vol. 2 Table 2-18..2-22 exception classes): CR0.EM=1 or CR4.OSFXSR=0 is #UD, then CR0.TS=1 is #NM.
    /// MMX-register forms share the mnemonics but are not implemented here, so they are #UD too.</summary>
    static void SseEnter(CpuState* s, in Instruction i)
    {
        if (i.HasLockPrefix) throw CpuFault.UD();
        for (int k = 0; k < i.OpCount; k++)
            if (i.GetOpKind(k) == OpKind.Register && i.GetOpRegister(k).IsMM()) throw CpuFault.UD();
        if ((s->Cr0 & Cr0.EM) != 0 || (s->Cr4 & Cr4OsFxsr) == 0) throw CpuFault.UD();
        if ((s->Cr0 & Cr0.TS) != 0) throw new CpuFault(Vector.NM);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int XmmSlot(Register r) => (r - Register.XMM0) << 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<ulong> GetXmm(CpuState* s, Register r)
    {
        int n = XmmSlot(r);
        return Vector128.Create(s->Xmm[n], s->Xmm[n + 1]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void SetXmm(CpuState* s, Register r, Vector128<ulong> v)
    {
        int n = XmmSlot(r);
        s->Xmm[n] = v.GetElement(0);
        s->Xmm[n + 1] = v.GetElement(1);
    }

    /// <summary>Linear address of a 16-byte memory operand; legacy SSE requires 16-byte alignment of m128
    /// operands except for the explicitly unaligned moves (SDM Vol. 1 14.9 / Vol. 2 2.4: #GP(0)).</summary>
    static ulong Address128(CpuState* s, in Instruction i, bool aligned, bool write = false)
    {
        ulong lin = MemAddress(s, i, 16, write);
        if (aligned && (lin & 15) != 0) throw CpuFault.GP();
        return lin;
    }

    /// <summary>Reads 16 bytes as two qword accesses, both before anything is written.</summary>
    static Vector128<ulong> Read128(CpuCore c, ulong lin)
    {
        ulong lo = Mem.Read64(c, lin);
        ulong hi = Mem.Read64(c, lin + 8);
        return Vector128.Create(lo, hi);
    }

    /// <summary>Writes 16 bytes as two qword accesses. A store that crosses a page has both pages translated
    /// for writing first, so a fault on the second page leaves memory untouched.</summary>
    static void Write128(CpuCore c, ulong lin, Vector128<ulong> v)
    {
        if ((lin & GuestRam.PageMask) > GuestRam.PageSize - 16)
        {
            c.Mmu.Translate(lin, MemAccess.Write);
            c.Mmu.Translate(lin + 15, MemAccess.Write);
        }
        Mem.Write64(c, lin, v.GetElement(0));
        Mem.Write64(c, lin + 8, v.GetElement(1));
    }

    /// <summary>Operand <paramref name="op"/> as xmm or m128 (aligned unless <paramref name="aligned"/> is false).</summary>
    static Vector128<ulong> ReadXmmM128(CpuCore c, in Instruction i, int op, bool aligned = true) =>
        i.GetOpKind(op) == OpKind.Register ? GetXmm(c.State, i.GetOpRegister(op)) : Read128(c, Address128(c.State, i, aligned));

    static bool IsXmmOp(in Instruction i, int op) => i.GetOpKind(op) == OpKind.Register && i.GetOpRegister(op).IsXMM();
}
