using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>SSE3 (legacy encodings): ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD, MOVSLDUP/MOVSHDUP/MOVDDUP and LDDQU
/// (SDM Vol. 2 instruction pages). FISTTP is in the x87 files. MONITOR/MWAIT are not implemented and stay #UD:
/// CPUID.1:ECX.MONITOR (bit 3) is reported clear, as KVM reports it by default, so a guest that checks CPUID
/// (Linux does, for its idle loop) never executes them.</summary>
public static unsafe partial class Interp
{
    static bool TrySse3(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Addsubps: case Mnemonic.Addsubpd: case Mnemonic.Haddps: case Mnemonic.Haddpd:
            case Mnemonic.Hsubps: case Mnemonic.Hsubpd:
                HorizontalArith(c, i);
                return true;
            case Mnemonic.Movsldup: case Mnemonic.Movshdup:
            {
                SseEnter(s, i);
                var v = ReadXmmM128(c, i, 1).AsUInt32();
                int o = i.Mnemonic == Mnemonic.Movshdup ? 1 : 0;
                SetXmm(s, i.Op0Register, Vector128.Create(v[o], v[o], v[2 + o], v[2 + o]).AsUInt64());
                return true;
            }
            case Mnemonic.Movddup:
            {
                SseEnter(s, i);
                SseSource(c, i, 1, 8, out ulong lo, out _);
                SetXmm(s, i.Op0Register, Vector128.Create(lo, lo));
                return true;
            }
            case Mnemonic.Lddqu:
                SseEnter(s, i);
                SetXmm(s, i.Op0Register, ReadXmmM128(c, i, 1, aligned: false));
                return true;
            default: return false;
        }
    }

    /// <summary>ADDSUB (even lanes subtract, odd lanes add), HADD and HSUB (pairs of adjacent lanes, the destination's
    /// pairs filling the low half of the result, the source's the high half). Each lane is one SSE addition.</summary>
    static void HorizontalArith(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        SseEnter(s, i);
        var m = i.Mnemonic;
        bool dbl = m is Mnemonic.Addsubpd or Mnemonic.Haddpd or Mnemonic.Hsubpd;
        int lanes = dbl ? 2 : 4, half = lanes / 2;
        SseSource(c, i, 1, 16, out ulong blo, out ulong bhi);
        int d = XmmSlot(i.Op0Register);
        ulong alo = s->Xmm[d], ahi = s->Xmm[d + 1];
        ulong rlo = 0, rhi = 0;
        var all = SseEnv(s, dbl);
        bool daz = Daz(s);
        for (int k = 0; k < lanes; k++)
        {
            ulong x, y;
            bool subtract;
            if (m is Mnemonic.Addsubps or Mnemonic.Addsubpd)
            {
                x = Lane(alo, ahi, k, dbl);
                y = Lane(blo, bhi, k, dbl);
                subtract = (k & 1) == 0;
            }
            else
            {
                bool fromDest = k < half;
                int p = 2 * (k % half);
                x = fromDest ? Lane(alo, ahi, p, dbl) : Lane(blo, bhi, p, dbl);
                y = fromDest ? Lane(alo, ahi, p + 1, dbl) : Lane(blo, bhi, p + 1, dbl);
                subtract = m is Mnemonic.Hsubps or Mnemonic.Hsubpd;
            }
            SetLane(ref rlo, ref rhi, k, dbl, SseAddLane(ref all, x, y, subtract, dbl, daz));
        }
        SseFinish(s, all);
        s->Xmm[d] = rlo;
        s->Xmm[d + 1] = rhi;
    }
}
