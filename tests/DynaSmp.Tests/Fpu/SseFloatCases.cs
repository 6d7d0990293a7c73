using DynaSmp.Tests.Differential;
using Iced.Intel;

namespace DynaSmp.Tests.Fpu;

/// <summary>SSE/SSE2 floating-point differential cases: XMM lanes and memory operands of the instruction's lane
/// type biased to special values, MXCSR with a random rounding mode, FTZ, DAZ and sticky flags. All exceptions stay
/// masked: an unmasked SIMD exception would be a real SIGFPE in the test process (those paths have unit tests).</summary>
public static class SseFloatCases
{
    public static readonly Mnemonic[] Mnemonics =
    [
        Mnemonic.Addps, Mnemonic.Addpd, Mnemonic.Addss, Mnemonic.Addsd, Mnemonic.Subps, Mnemonic.Subpd, Mnemonic.Subss, Mnemonic.Subsd,
        Mnemonic.Mulps, Mnemonic.Mulpd, Mnemonic.Mulss, Mnemonic.Mulsd, Mnemonic.Divps, Mnemonic.Divpd, Mnemonic.Divss, Mnemonic.Divsd,
        Mnemonic.Minps, Mnemonic.Minpd, Mnemonic.Minss, Mnemonic.Minsd, Mnemonic.Maxps, Mnemonic.Maxpd, Mnemonic.Maxss, Mnemonic.Maxsd,
        Mnemonic.Sqrtps, Mnemonic.Sqrtpd, Mnemonic.Sqrtss, Mnemonic.Sqrtsd, Mnemonic.Cmpps, Mnemonic.Cmppd, Mnemonic.Cmpss, Mnemonic.Cmpsd,
        Mnemonic.Comiss, Mnemonic.Ucomiss, Mnemonic.Comisd, Mnemonic.Ucomisd,
        Mnemonic.Cvtsi2ss, Mnemonic.Cvtsi2sd, Mnemonic.Cvtss2si, Mnemonic.Cvtsd2si, Mnemonic.Cvttss2si, Mnemonic.Cvttsd2si,
        Mnemonic.Cvtss2sd, Mnemonic.Cvtsd2ss, Mnemonic.Cvtps2pd, Mnemonic.Cvtpd2ps, Mnemonic.Cvtdq2ps, Mnemonic.Cvtps2dq,
        Mnemonic.Cvttps2dq, Mnemonic.Cvtdq2pd, Mnemonic.Cvtpd2dq, Mnemonic.Cvttpd2dq,
        Mnemonic.Rcpps, Mnemonic.Rcpss, Mnemonic.Rsqrtps, Mnemonic.Rsqrtss,
    ];

    /// <summary>RCP*/RSQRT* results are compared within the SDM's relative error bound (1.5 * 2^-12 each side, so
    /// 2^-11 between the host and DynaSmp); every other output byte exactly.</summary>
    static string? ReciprocalWithinBound(byte[] native, byte[] emu, byte[] mask)
    {
        for (int k = 0; k < 160; k++)
            if (((native[k] ^ emu[k]) & mask[k]) != 0) return $"state byte {k} differs";
        for (int k = 160; k < 416; k += 4)
        {
            uint a = BitConverter.ToUInt32(native, k), b = BitConverter.ToUInt32(emu, k);
            if (a == b) continue;
            float fa = BitConverter.UInt32BitsToSingle(a), fb = BitConverter.UInt32BitsToSingle(b);
            if (!float.IsFinite(fa) || !float.IsFinite(fb) || (a ^ b) >> 31 != 0) return $"lane at {k} differs in kind or sign";
            double rel = Math.Abs((double)fa - fb) / Math.Max(Math.Abs((double)fa), Math.Abs((double)fb));
            if (rel > Math.Pow(2, -11)) return $"lane at {k}: relative difference {rel:E2} beyond 2^-11";
        }
        return null;
    }

    static readonly Register[] SafeGprs = [Register.RAX, Register.RCX, Register.RDX, Register.RSI, Register.RDI, Register.R8, Register.R9, Register.R10, Register.R11];

    public static Code[] Codes()
    {
        var list = new List<Code>();
        foreach (var code in X87Cases.CodesFor(Mnemonics))
        {
            if (code == Code.Cmpsd_m32_m32 || code == Code.Cmpsd_m32_m32) continue;
            var op = code.ToOpCode();
            bool ok = true;
            for (int k = 0; k < op.OpCount; k++)
                ok &= op.GetOpKind(k).ToString() is "xmm_reg" or "xmm_or_mem" or "xmm_rm" or "r32_or_mem" or "r64_or_mem" or "r32_reg" or "r64_reg" or "imm8";
            if (ok && op.OpCount >= 2) list.Add(code);
        }
        return list.ToArray();
    }

    /// <summary>Lane bits of the kind the mnemonic reads (int32 lanes for CVTDQ2*, else single or double).</summary>
    static void FillLanes(Rng r, Span<byte> dst, string kind)
    {
        for (int k = 0; k < 16; k += kind == "d" ? 8 : 4)
        {
            if (kind == "d") BitConverter.TryWriteBytes(dst[k..], FpValues.F64(r));
            else if (kind == "i") BitConverter.TryWriteBytes(dst[k..], (uint)FpValues.Integer(r, 32));
            else BitConverter.TryWriteBytes(dst[k..], FpValues.F32(r));
        }
    }

    static string SourceKind(Mnemonic m)
    {
        string n = m.ToString().ToLowerInvariant();
        if (n.StartsWith("cvtdq2", StringComparison.Ordinal)) return "i";
        if (n.StartsWith("cvtsi2", StringComparison.Ordinal)) return "g";
        if (n.StartsWith("cvt", StringComparison.Ordinal))
        {
            string src = n.Replace("cvtt", "cvt", StringComparison.Ordinal)[3..5];
            return src is "sd" or "pd" ? "d" : "s";
        }
        return n.EndsWith('d') ? "d" : "s";
    }

    public static FpCase Generate(string group, Code[] codes, ulong seed)
    {
        var r = new Rng(seed);
        var code = r.Pick(codes);
        var op = code.ToOpCode();
        var image = X87Cases.RandomImage(r, allMasked: true);
        var input = FpuDiff.BaseInput(r);
        var buf = new byte[NativeRunner.BufferSize];
        for (int k = 0; k < buf.Length; k += 8) BitConverter.TryWriteBytes(buf.AsSpan(k), r.NextU64());
        string kind = SourceKind(code.Mnemonic());
        // MXCSR: every exception masked; random RC, FTZ, DAZ and sticky flags.
        uint mxcsr = 0x1F80 | (uint)r.Next(4) << 13 | (r.Percent(25) ? 1u << 15 : 0) | (r.Percent(25) ? 1u << 6 : 0) | (r.Percent(30) ? (uint)r.Next(64) : 0);
        BitConverter.TryWriteBytes(image.AsSpan(24), mxcsr);
        for (int x = 0; x < 16; x++) FillLanes(r, image.AsSpan(160 + 16 * x), r.Percent(80) ? kind == "g" ? "s" : kind : "s");
        var regs = new List<Register>();
        MemoryOperand? mem = null;
        int imm = -1, memOff = -1;
        for (int k = 0; k < op.OpCount; k++)
        {
            string kk = op.GetOpKind(k).ToString();
            switch (kk)
            {
                case "xmm_reg": regs.Add(Register.XMM0 + r.Next(16)); break;
                case "xmm_or_mem": case "xmm_rm":
                case "r32_or_mem": case "r64_or_mem":
                    if (r.Percent(50))
                    {
                        memOff = 16 * r.Next(8);
                        mem = new MemoryOperand(Register.RBX, memOff);
                    }
                    else if (kk.StartsWith("xmm", StringComparison.Ordinal)) regs.Add(Register.XMM0 + r.Next(16));
                    else
                    {
                        var g = r.Pick(SafeGprs);
                        input.Gpr[g - Register.RAX] = FpValues.Integer(r, 64);
                        regs.Add(kk.StartsWith("r32", StringComparison.Ordinal) ? g - Register.RAX + Register.EAX : g);
                    }
                    break;
                case "r32_reg": regs.Add(r.Pick(SafeGprs) - Register.RAX + Register.EAX); break;
                case "r64_reg": regs.Add(r.Pick(SafeGprs)); break;
                case "imm8": imm = r.Percent(90) ? r.Next(8) : r.Next(256); break;
            }
        }
        if (memOff >= 0)
        {
            if (kind == "g") BitConverter.TryWriteBytes(buf.AsSpan(FpuDiff.MemOffset + memOff), FpValues.Integer(r, 64));
            else FillLanes(r, buf.AsSpan(FpuDiff.MemOffset + memOff, 16), kind);
        }
        Instruction insn;
        if (mem is { } mo)
            insn = imm >= 0 ? Instruction.Create(code, regs[0], mo, imm) : Instruction.Create(code, regs[0], mo);
        else
            insn = imm >= 0 ? Instruction.Create(code, regs[0], regs[1], imm) : Instruction.Create(code, regs[0], regs[1]);
        var c = FpuDiff.Make(group, seed, insn, image, input, buf);
        if (insn.Mnemonic is Mnemonic.Rcpps or Mnemonic.Rcpss or Mnemonic.Rsqrtps or Mnemonic.Rsqrtss)
            c.Tolerance = (n, d) => ReciprocalWithinBound(n, d, c.ImageMask);
        return c;
    }
}
