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

    /// <summary>What tier 1 lowers (InstEmit.SseFloat.cs) beyond <see cref="Mnemonics"/>: moves, logicals, MOVMSK,
    /// shuffles and unpacks. The tier-1 group runs these and the FP mnemonics compiled on every case.</summary>
    public static readonly Mnemonic[] Tier1Extra =
    [
        Mnemonic.Movaps, Mnemonic.Movapd, Mnemonic.Movups, Mnemonic.Movupd, Mnemonic.Movdqa, Mnemonic.Movdqu,
        Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movq, Mnemonic.Movd, Mnemonic.Movlpd, Mnemonic.Movlps,
        Mnemonic.Movhpd, Mnemonic.Movhps, Mnemonic.Movhlps, Mnemonic.Movlhps,
        Mnemonic.Andps, Mnemonic.Andpd, Mnemonic.Andnps, Mnemonic.Andnpd, Mnemonic.Orps, Mnemonic.Orpd,
        Mnemonic.Xorps, Mnemonic.Xorpd, Mnemonic.Pand, Mnemonic.Pandn, Mnemonic.Por, Mnemonic.Pxor,
        Mnemonic.Movmskpd, Mnemonic.Movmskps, Mnemonic.Unpcklps, Mnemonic.Unpckhps, Mnemonic.Unpcklpd, Mnemonic.Unpckhpd,
        Mnemonic.Shufps, Mnemonic.Shufpd,
    ];

    public static Code[] Codes() => Codes(Mnemonics);

    public static Code[] Codes(Mnemonic[] mnemonics)
    {
        var list = new List<Code>();
        foreach (var code in X87Cases.CodesFor(mnemonics))
        {
            if (code is Code.Cmpsd_m32_m32 or Code.Movsd_m32_m32) continue; // the string forms
            var op = code.ToOpCode();
            bool ok = true;
            for (int k = 0; k < op.OpCount; k++)
                ok &= op.GetOpKind(k).ToString() is "xmm_reg" or "xmm_or_mem" or "xmm_rm" or "r32_or_mem" or "r64_or_mem" or "r32_reg" or "r64_reg" or "imm8" or "mem";
            if (ok && op.OpCount >= 2) list.Add(code);
        }
        return list.ToArray();
    }

    /// <summary>A zero or normal lane value near 1 (or a small integer, so some results are exact): the operands tier 1's
    /// fast path takes.</summary>
    static void FillOrdinary(Rng r, Span<byte> dst, string kind)
    {
        for (int k = 0; k < 16; k += kind == "d" ? 8 : 4)
        {
            bool small = r.Percent(20);
            int v = r.Next(-100, 101);
            if (kind == "d")
                BitConverter.TryWriteBytes(dst[k..], small ? BitConverter.DoubleToUInt64Bits(v)
                    : (r.Percent(50) ? 1UL << 63 : 0) | (ulong)(1023 + r.Next(-40, 41)) << 52 | (r.NextU64() & 0xF_FFFF_FFFF_FFFF));
            else if (kind == "i") BitConverter.TryWriteBytes(dst[k..], r.Percent(80) ? v * r.Next(1, 100000) : (int)r.NextU64());
            else
                BitConverter.TryWriteBytes(dst[k..], small ? BitConverter.SingleToUInt32Bits(v)
                    : (r.Percent(50) ? 1u << 31 : 0) | (uint)(127 + r.Next(-20, 21)) << 23 | ((uint)r.NextU64() & 0x7F_FFFF));
        }
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

    /// <param name="fastBias">Tier-1 group: most cases in the fast path's domain (round to nearest, PE already set,
    /// zero or normal operands near 1), the rest as the plain group draws them, so both sides of every fast-path
    /// condition run compiled.</param>
    public static FpCase Generate(string group, Code[] codes, ulong seed, bool fastBias = false)
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
        bool fast = fastBias && r.Percent(70);
        if (fast) mxcsr = 0x1F80 | (r.Percent(85) ? 0x20u : 0) | (r.Percent(20) ? 1u << 15 | 1u << 6 : 0) | (r.Percent(20) ? (uint)r.Next(64) : 0);
        BitConverter.TryWriteBytes(image.AsSpan(24), mxcsr);
        for (int x = 0; x < 16; x++)
        {
            string lanes = r.Percent(80) ? kind == "g" ? "s" : kind : "s";
            if (fast && r.Percent(90)) FillOrdinary(r, image.AsSpan(160 + 16 * x), lanes);
            else FillLanes(r, image.AsSpan(160 + 16 * x), lanes);
        }
        var regs = new List<Register>();
        MemoryOperand? mem = null;
        int imm = -1, memOff = -1;
        bool memFirst = false;
        for (int k = 0; k < op.OpCount; k++)
        {
            string kk = op.GetOpKind(k).ToString();
            switch (kk)
            {
                case "xmm_reg": regs.Add(Register.XMM0 + r.Next(16)); break;
                case "mem":
                    memOff = 16 * r.Next(8);
                    mem = new MemoryOperand(Register.RBX, memOff);
                    memFirst = k == 0;
                    break;
                case "xmm_or_mem": case "xmm_rm":
                case "r32_or_mem": case "r64_or_mem":
                    if (kk.EndsWith("_or_mem", StringComparison.Ordinal) && r.Percent(50))
                    {
                        memOff = 16 * r.Next(8);
                        mem = new MemoryOperand(Register.RBX, memOff);
                        memFirst = k == 0;
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
                case "imm8":
                    // CMPcc predicates are imm[2:0]; ROUNDxx reads imm[3:0]; DPPS/DPPD all eight bits.
                    imm = code.Mnemonic() switch
                    {
                        Mnemonic.Dpps or Mnemonic.Dppd => r.Next(256),
                        Mnemonic.Roundps or Mnemonic.Roundpd or Mnemonic.Roundss or Mnemonic.Roundsd => r.Percent(90) ? r.Next(16) : r.Next(256),
                        _ => r.Percent(90) ? r.Next(8) : r.Next(256),
                    };
                    break;
            }
        }
        if (memOff >= 0)
        {
            if (kind == "g") BitConverter.TryWriteBytes(buf.AsSpan(FpuDiff.MemOffset + memOff), FpValues.Integer(r, 64));
            else if (fast) FillOrdinary(r, buf.AsSpan(FpuDiff.MemOffset + memOff, 16), kind);
            else FillLanes(r, buf.AsSpan(FpuDiff.MemOffset + memOff, 16), kind);
        }
        Instruction insn;
        if (mem is { } mo && memFirst)
            insn = Instruction.Create(code, mo, regs[0]);
        else if (mem is { } mo2)
            insn = imm >= 0 ? Instruction.Create(code, regs[0], mo2, imm) : Instruction.Create(code, regs[0], mo2);
        else
            insn = imm >= 0 ? Instruction.Create(code, regs[0], regs[1], imm) : Instruction.Create(code, regs[0], regs[1]);
        var c = FpuDiff.Make(group, seed, insn, image, input, buf);
        if (insn.Mnemonic is Mnemonic.Rcpps or Mnemonic.Rcpss or Mnemonic.Rsqrtps or Mnemonic.Rsqrtss)
            c.Tolerance = (n, d) => ReciprocalWithinBound(n, d, c.ImageMask);
        return c;
    }
}
