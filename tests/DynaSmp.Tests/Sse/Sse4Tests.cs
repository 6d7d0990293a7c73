using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.SystemInsns;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SseInsns;

/// <summary>CPUID's SSE3/SSSE3/SSE4.1/SSE4.2/POPCNT bits against what executes, and the SSE3/SSE4 rules the
/// differential groups cannot run on the host (a fault there would kill the test process): alignment #GP, unmasked
/// #XM with ROUNDxx's precision suppression, MONITOR/MWAIT.</summary>
public sealed unsafe class Sse4Tests
{
    const ulong D = SseMachine.DataAddr;

    /// <summary>Leaf 1 ECX bits and the Iced feature whose instructions each one promises.</summary>
    public static TheoryData<string, int, bool> FeatureBits() => new()
    {
        { nameof(CpuidFeature.SSE3), 0, true },
        { nameof(CpuidFeature.MONITOR), 3, false },
        { nameof(CpuidFeature.SSSE3), 9, true },
        { nameof(CpuidFeature.SSE4_1), 19, true },
        { nameof(CpuidFeature.SSE4_2), 20, true },
        { nameof(CpuidFeature.POPCNT), 23, true },
    };

    static readonly CpuidFeature[] Baseline = [CpuidFeature.INTEL386, CpuidFeature.X64, CpuidFeature.SSE, CpuidFeature.SSE2];

    /// <summary>Every legacy-encoded 64-bit-mode opcode of <paramref name="feature"/> (MMX-register forms aside: MMX is
    /// not reported) in a register form and, where it has one, a memory form; null when an operand kind is not covered.</summary>
    static IEnumerable<Instruction> Instances(CpuidFeature feature)
    {
        foreach (Code code in Enum.GetValues<Code>())
        {
            var op = code.ToOpCode();
            if (!op.IsInstruction || !op.Mode64 || op.Encoding != EncodingKind.Legacy) continue;
            var features = code.CpuidFeatures();
            if (Array.IndexOf(features, feature) < 0 || Array.Exists(features, f => f != feature && Array.IndexOf(Baseline, f) < 0)) continue;
            bool mmx = false;
            for (int n = 0; n < op.OpCount; n++) mmx |= op.GetOpKind(n).ToString().StartsWith("mm_", StringComparison.Ordinal);
            if (mmx) continue;
            foreach (bool memory in new[] { false, true })
            {
                var i = default(Instruction);
                i.Code = code;
                bool hasMem = false, ok = true;
                int xmm = 1;
                for (int n = 0; n < op.OpCount; n++)
                {
                    string k = op.GetOpKind(n).ToString();
                    if (k == "mem" || (memory && k.EndsWith("_or_mem", StringComparison.Ordinal) && !hasMem))
                    {
                        i.SetOpKind(n, OpKind.Memory);
                        hasMem = true;
                    }
                    else if (k.StartsWith("xmm", StringComparison.Ordinal)) { i.SetOpKind(n, OpKind.Register); i.SetOpRegister(n, Register.XMM0 + xmm++); }
                    else if (k.StartsWith("r8", StringComparison.Ordinal)) { i.SetOpKind(n, OpKind.Register); i.SetOpRegister(n, Register.CL); }
                    else if (k.StartsWith("r16", StringComparison.Ordinal)) { i.SetOpKind(n, OpKind.Register); i.SetOpRegister(n, Register.CX); }
                    else if (k.StartsWith("r32", StringComparison.Ordinal)) { i.SetOpKind(n, OpKind.Register); i.SetOpRegister(n, n == 0 ? Register.ESI : Register.ECX); }
                    else if (k.StartsWith("r64", StringComparison.Ordinal)) { i.SetOpKind(n, OpKind.Register); i.SetOpRegister(n, n == 0 ? Register.RSI : Register.RCX); }
                    else if (k == "imm8") { i.SetOpKind(n, OpKind.Immediate8); i.SetImmediate(n, 1); }
                    else ok = false;
                }
                Assert.True(ok, $"{code}: operand kinds not covered by this test");
                if (hasMem)
                {
                    i.MemoryBase = Register.RBX;
                    i.MemoryIndexScale = 1;
                }
                if (memory && !hasMem) continue;
                yield return i;
            }
        }
    }

    [Theory]
    [MemberData(nameof(FeatureBits))]
    public void Cpuid_reports_a_feature_bit_exactly_when_its_instructions_execute(string feature, int bit, bool reported)
    {
        new CpuidModel().Query(1, 0, out _, out _, out uint ecx, out _);
        Assert.Equal(reported, (ecx & (1u << bit)) != 0);
        var f = Enum.Parse<CpuidFeature>(feature);
        int count = 0;
        foreach (var insn in Instances(f))
        {
            count++;
            using var m = new SseMachine(0, a => a.AddInstruction(insn));
            m.Gpr(3) = D;
            var exit = m.Run();
            if (reported) Assert.True(exit == ExitReason.Hlt, $"{insn.Code} ({insn}): {exit} {Vector.Name(m.Cpu.ExitVector)} {m.Cpu.ExitMessage}");
            else
            {
                Assert.Equal(ExitReason.Exception, exit);
                Assert.Equal(Vector.UD, m.Cpu.ExitVector);
            }
        }
        Assert.True(count >= (reported ? 2 : 1), $"{feature}: only {count} instructions found");
    }

    public static TheoryData<Code, int> AlignedM128() => Product(
    [
        Code.Movntdqa_xmm_m128, Code.Ptest_xmm_xmmm128, Code.Pmulld_xmm_xmmm128, Code.Pcmpgtq_xmm_xmmm128, Code.Haddps_xmm_xmmm128,
        Code.Addsubpd_xmm_xmmm128, Code.Movshdup_xmm_xmmm128, Code.Blendvps_xmm_xmmm128, Code.Phminposuw_xmm_xmmm128,
        Code.Roundps_xmm_xmmm128_imm8, Code.Dpps_xmm_xmmm128_imm8, Code.Mpsadbw_xmm_xmmm128_imm8, Code.Pblendw_xmm_xmmm128_imm8,
    ]);

    public static TheoryData<Code, int> UnalignedM128() => Product(
    [
        Code.Lddqu_xmm_m128, Code.Pcmpistri_xmm_xmmm128_imm8, Code.Pcmpistrm_xmm_xmmm128_imm8, Code.Pcmpestri_xmm_xmmm128_imm8,
        Code.Pcmpestrm64_xmm_xmmm128_imm8, Code.Movddup_xmm_xmmm64, Code.Pmovzxbq_xmm_xmmm16, Code.Roundsd_xmm_xmmm64_imm8,
    ]);

    static TheoryData<Code, int> Product(Code[] codes)
    {
        var d = new TheoryData<Code, int>();
        foreach (var c in codes) { d.Add(c, 0); d.Add(c, 1); }
        return d;
    }

    static Instruction WithMemory(Code code) => code.ToOpCode().OpCount == 3
        ? Instruction.Create(code, Register.XMM4, new MemoryOperand(Register.RAX), 0x0C)
        : Instruction.Create(code, Register.XMM4, new MemoryOperand(Register.RAX));

    [Theory]
    [MemberData(nameof(AlignedM128))]
    public void Misaligned_m128_operand_is_GP0_and_changes_nothing(Code code, int tier)
    {
        // SDM Vol. 2 2.4, exception class 4: a legacy SSE m128 operand not 16-byte aligned is #GP(0).
        using var m = new SseMachine(tier, a => a.AddInstruction(WithMemory(code)));
        var z = Vector128.Create(0x1122334455667788UL, 0x99AABBCCDDEEFF00UL);
        m.SetXmm(4, z);
        m.Gpr(0) = D + 4;
        m.RunExpectFault(Vector.GP, SseMachine.CodeAddr);
        Assert.Equal(z, m.GetXmm(4));
        m.Gpr(0) = D + 16;
        m.RunToHlt(); // the same instruction, aligned
    }

    [Theory]
    [MemberData(nameof(UnalignedM128))]
    public void Operands_without_an_alignment_rule_run_misaligned_across_a_page(Code code, int tier)
    {
        // LDDQU and PCMPxSTRx take any m128 (SDM LDDQU, PCMPESTRI); m16/m64 operands have no alignment rule.
        using var m = new SseMachine(tier, a => a.AddInstruction(WithMemory(code)));
        m.Gpr(0) = D + 0x1000 - 7;
        for (int k = 0; k < 32; k++) m.Mem(D + 0x1000 - 16 + (ulong)k, 1)[0] = (byte)(0x41 + k);
        m.RunToHlt();
        if (code == Code.Lddqu_xmm_m128) Assert.Equal(m.ReadMem128(D + 0x1000 - 7), m.GetXmm(4));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Roundss_precision_exception_is_xm_unless_imm8_bit3_suppresses_it(int tier)
    {
        for (int suppress = 0; suppress < 2; suppress++)
        {
            // imm8 0: round to nearest, PE reported; imm8 9: round down with the precision exception suppressed.
            sbyte imm = (sbyte)(suppress == 1 ? 0x9 : 0x0);
            using var m = new SysMachine(tier, a => a.roundss(xmm0, xmm1, imm));
            m.S->Cr4 |= 1 << 9 | 1 << 10;
            m.S->Mxcsr = 0x1F80 & ~(1u << 12); // PM unmasked
            m.S->Xmm[0] = 0xDEAD;
            m.S->Xmm[2] = BitConverter.SingleToUInt32Bits(1.5f);
            if (suppress == 0)
            {
                m.RunExpectFault(Vector.XM, SysMachine.CodeAddr);
                Assert.Equal(0xDEADUL, m.S->Xmm[0]);
                Assert.Equal(0x20u, m.S->Mxcsr & 0x3F); // PE recorded
            }
            else
            {
                m.RunToHlt();
                Assert.Equal((ulong)BitConverter.SingleToUInt32Bits(1f), m.S->Xmm[0]);
                Assert.Equal(0u, m.S->Mxcsr & 0x3F);
            }
        }
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Monitor_and_mwait_are_UD_while_cpuid_clears_monitor(int tier)
    {
        using (var m = new SseMachine(tier, a => a.AddInstruction(Instruction.Create(Code.Monitorq)))) m.RunExpectFault(Vector.UD, SseMachine.CodeAddr);
        using (var m = new SseMachine(tier, a => a.AddInstruction(Instruction.Create(Code.Mwait)))) m.RunExpectFault(Vector.UD, SseMachine.CodeAddr);
    }

    /// <summary>PTEST and PCMPxSTRx write RFLAGS from a tier-0 call inside a compiled block: the flags an ALU instruction
    /// left pending before them must not leak into the SETcc/ADC/CMOVcc after them. Tier 1 must agree with tier 0 (which
    /// the differential groups hold to the host) on random inputs.</summary>
    [Fact]
    public void Sse4_flag_writers_feed_later_flag_readers_alike_in_both_tiers()
    {
        static void Program(Assembler a)
        {
            a.add(rax, rbx);
            a.ptest(xmm1, xmm2);
            a.setz(cl);
            a.setc(ch);
            a.sub(rbx, rdx);
            a.pcmpistri(xmm3, xmm4, 0x0C);
            a.seto(r8b);
            a.sets(r9b);
            a.setz(r10b);
            a.adc(r11, 0);
            a.mov(edx, 20);
            a.pcmpestri(xmm3, xmm4, 0x44);
            a.cmovc(r12, rcx);
            a.setnz(r13b);
        }
        var r = new SseRandom(77);
        using var t0 = new SseMachine(0, Program);
        using var t1 = new SseMachine(1, Program);
        for (int n = 0; n < 300; n++)
        {
            var x1 = r.Vec();
            var x2 = r.Next(3) switch { 0 => x1 & r.Vec(), 1 => ~x1 & r.Vec(), _ => r.Vec() };
            var x3 = r.Vec();
            var x4 = r.Next(2) == 0 ? x3 : r.VecNear(x3);
            ulong[] gpr = new ulong[16];
            for (int k = 0; k < 16; k++) gpr[k] = r.U64();
            gpr[4] = SseMachine.StackTop;
            gpr[0] = (ulong)r.Next(40) - 20;
            foreach (var m in new[] { t0, t1 })
            {
                for (int k = 0; k < 16; k++) m.Gpr(k) = gpr[k];
                m.SetXmm(1, x1); m.SetXmm(2, x2); m.SetXmm(3, x3); m.SetXmm(4, x4);
            }
            t0.RunToHlt();
            t1.RunToHlt();
            for (int k = 0; k < 16; k++) Assert.True(t0.Gpr(k) == t1.Gpr(k), $"case {n}: GPR{k} tier 0 0x{t0.Gpr(k):x} tier 1 0x{t1.Gpr(k):x}");
            Assert.Equal(Flags.Get(t0.S) & RFlags.Status, Flags.Get(t1.S) & RFlags.Status);
        }
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Crc32_computes_crc32c_of_a_known_string(int tier)
    {
        // CRC-32C check value (RFC 3720 / iSCSI): "123456789" -> 0xE3069283, initial value and final XOR all ones.
        using var m = new SseMachine(tier, a =>
        {
            var loop = a.CreateLabel();
            a.mov(eax, -1);
            a.Label(ref loop);
            a.crc32(eax, __byte_ptr[rsi]);
            a.inc(rsi);
            a.dec(ecx);
            a.jnz(loop);
            a.not(eax);
        });
        "123456789"u8.CopyTo(m.Mem(D, 9));
        m.Gpr(6) = D;
        m.Gpr(1) = 9;
        m.RunToHlt();
        Assert.Equal(0xE306_9283UL, m.Gpr(0));
    }
}
