using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Xunit.Abstractions;
using Decoder = Iced.Intel.Decoder;
using Encoder = Iced.Intel.Encoder;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// 32-bit protected-mode code in tier 1 against tier 0. The host cannot run 32-bit code from this 64-bit process,
/// so the oracle for flat 32-bit tier-1 code is the interpreter, which the 64-bit groups hold to the host CPU and
/// whose 32-bit forms the mode tests check against the SDM. Random straight-line sequences of the integer
/// instructions compilers emit (register, immediate and 32-bit-addressed memory operands, PUSH/POP, #DE from DIV),
/// compared in GPRs, RIP, exit, defined flags, the data buffer and the stack window.
/// </summary>
[Collection("Differential")]
public sealed unsafe class Flat32TierTests(ITestOutputHelper output)
{
    static readonly Mnemonic[] Mnemonics =
    [
        Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Lea, Mnemonic.Push, Mnemonic.Pop,
        Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Or, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Test,
        Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not, Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar,
        Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Imul, Mnemonic.Mul, Mnemonic.Div, Mnemonic.Idiv,
        Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Xchg, Mnemonic.Bswap, Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc, Mnemonic.Shld, Mnemonic.Shrd, Mnemonic.Xadd, Mnemonic.Cmpxchg, Mnemonic.Cmpxchg8b,
        Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Popcnt, Mnemonic.Lzcnt, Mnemonic.Tzcnt, Mnemonic.Lahf, Mnemonic.Sahf, Mnemonic.Enter,
        Mnemonic.Sete, Mnemonic.Setb, Mnemonic.Setl, Mnemonic.Setg, Mnemonic.Setbe, Mnemonic.Seto, Mnemonic.Sets, Mnemonic.Setp,
        Mnemonic.Cmove, Mnemonic.Cmovne, Mnemonic.Cmovb, Mnemonic.Cmova, Mnemonic.Cmovl, Mnemonic.Cmovge, Mnemonic.Cmovs, Mnemonic.Cmovo,
    ];

    static readonly Code[] Codes = ComputeCodes();

    static Code[] ComputeCodes()
    {
        var list = new List<Code>();
        foreach (Code c in Enum.GetValues<Code>())
        {
            if (Array.IndexOf(Mnemonics, c.Mnemonic()) < 0) continue;
            var info = c.ToOpCode();
            if (!info.IsInstruction || !info.Mode32 || info.Encoding != EncodingKind.Legacy || c == Code.Bswap_r16) continue;
            bool ok = true;
            for (int n = 0; n < info.OpCount; n++)
            {
                var k = info.GetOpKind(n);
                ok &= CaseBuilder.Supported(k) && k is not (OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_rm or OpCodeOperandKind.r64_opcode
                    or OpCodeOperandKind.r64_or_mem or OpCodeOperandKind.rax or OpCodeOperandKind.imm64 or OpCodeOperandKind.imm8sex64
                    or OpCodeOperandKind.imm32sex64 or OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm or OpCodeOperandKind.xmm_or_mem);
            }
            if (ok) list.Add(c);
        }
        return list.ToArray();
    }

    /// <summary><paramref name="FaultFlagMask"/>: per instruction address, the flags defined before it, which are those a
    /// fault there leaves in RFLAGS (the others were left undefined by an earlier instruction).</summary>
    sealed record Case(ulong Seed, byte[] Code, string Text, MachineState Input, byte[] Buffer, byte[] Stack, ulong FlagMask,
        Dictionary<ulong, ulong>? FaultFlagMask = null);

    static Case Generate(ulong seed)
    {
        var b = new CaseBuilder(seed, allowDf: false) { Code32 = true };
        for (int k = 0; k < 16; k++) b.St.Gpr[k] = k < 8 ? (uint)b.St.Gpr[k] : 0;
        b.St.Gpr[4] = (uint)b.Rsp;
        var bytes = new List<byte>();
        var text = new StringBuilder();
        RflagsBits undefined = RflagsBits.None;
        int want = b.R.Next(2, 9), made = 0;
        var faultMask = new Dictionary<ulong, ulong>();
        for (int attempt = 0; made < want && attempt < 300; attempt++)
        {
            var code = b.R.Pick(Codes);
            // Keep earlier address registers out of later operands while enough registers stay free (RandomGpr
            // needs one of EAX..EBX for byte operands).
            if (System.Numerics.BitOperations.PopCount((uint)b.Pinned & 0xEF) >= 2) b.Pinned = 0;
            b.Exclude = b.Pinned;
            Instruction insn;
            try { insn = code.Mnemonic() is Mnemonic.Div or Mnemonic.Idiv && b.R.Percent(70) ? Groups.Divide(b, code) : b.FromCode(code); }
            catch (InvalidOperationException) { continue; }
            ulong ip = NativeRunner.TestRip + (ulong)bytes.Count;
            var w = new CodeBytes();
            if (!Encoder.Create(32, w).TryEncode(insn, ip, out _, out _)) continue;
            byte[] one = w.ToArray();
            var decoded = Decoder.Create(32, one, ip).Decode();
            if (decoded.Code == Iced.Intel.Code.INVALID || decoded.Length != one.Length) continue;
            if (!UndefinedResults.Append(decoded, ip, ref undefined, faultMask)) continue; // reads a flag left undefined
            bytes.AddRange(one);
            text.Append(decoded).Append("; ");
            made++;
        }
        ulong mask = (RFlags.Status | RFlags.DF) & ~UndefinedResults.FlagBits(undefined);
        return new Case(seed, bytes.ToArray(), text.ToString(), b.St, b.Buf, b.Stack, mask, faultMask);
    }

    sealed record Outcome(ExitReason Exit, int Vector, ulong Rip, ulong[] Gpr, ulong Flags, byte[] Buffer, byte[] Stack, long CompiledEntries) : ITierOutcome;

    static Outcome Run(Case c, GuestRam ram, bool compiled, Action<CpuCore>? setup = null)
    {
        ram.Write(NativeRunner.BufferAddress, c.Buffer);
        ulong stackLo = c.Input.Gpr[4] - NativeRunner.StackBelow;
        ram.Write(stackLo, c.Stack);
        return EmulatedRun.Run(ram, c.Code, c.Input, compiled, flat32: true, 1000, (cpu, exit) =>
        {
            CpuState* s = cpu.State;
            var gpr = new ulong[16];
            for (int k = 0; k < 16; k++) gpr[k] = s->Gpr[k];
            return new Outcome(exit, exit == ExitReason.Exception ? cpu.ExitVector : -1, s->Rip, gpr, Flags.Get(s),
                ram.Span(NativeRunner.BufferAddress, c.Buffer.Length).ToArray(), ram.Span(stackLo, c.Stack.Length).ToArray(), cpu.CompiledBlockEntries);
        }, setup);
    }

    static string? Compare(Case c, Outcome t0, Outcome t1)
    {
        var sb = TierDiff.Compare(t0, t1, c.Input.Gpr, 16, c.FlagMask, c.FaultFlagMask);
        if (!t0.Buffer.AsSpan().SequenceEqual(t1.Buffer)) sb.AppendLine("  data buffer differs");
        if (!t0.Stack.AsSpan().SequenceEqual(t1.Stack)) sb.AppendLine("  stack differs");
        return sb.Length == 0 ? null : sb.ToString();
    }

    static ulong CaseSeed(ulong run, int k) => Rng.Mix(run ^ 0x3232_3232, (ulong)k);

    void RunMany(ulong runSeed, int count)
    {
        int failed = 0, faults = 0;
        var report = new StringBuilder();
        lock (NativeRunner.Lock)
        {
            for (int k = 0; k < count; k++)
            {
                ulong seed = CaseSeed(runSeed, k);
                var c = Generate(seed);
                // Fresh RAM for each tier: a wild store by one run must not feed the other run's loads.
                Outcome t0, t1;
                using (var r0 = DiffHarness.NewRam()) t0 = Run(c, r0, compiled: false);
                using (var r1 = DiffHarness.NewRam()) t1 = Run(c, r1, compiled: true);
                if (t0.Exit == ExitReason.Exception) faults++;
                string? diff = Compare(c, t0, t1);
                if (diff == null) continue;
                if (++failed <= 5) report.AppendLine($"seed 0x{seed:x} (DYNASMP_FLAT32_SEED=0x{seed:x}): {c.Text}\n  bytes {Convert.ToHexString(c.Code)}\n{diff}");
            }
        }
        string summary = $"flat 32-bit, tier 1 vs tier 0: {count} sequences, {faults} ended in an exception in both, {failed} differ; run seed 0x{runSeed:x}";
        output.WriteLine(summary);
        if (failed > 0) Assert.Fail(summary + "\n" + report);
    }

    [DifferentialFact]
    public void Fixed_run() => RunMany(0xF1A7_3232, int.TryParse(Environment.GetEnvironmentVariable("DYNASMP_FLAT32_CASES"), out int n) ? n : 4000);

    [DifferentialFact]
    public void Random_run()
    {
        ulong run = DiffHarness.RunSeed;
        if (DiffHarness.ParseSeed(Environment.GetEnvironmentVariable("DYNASMP_FLAT32_SEED")) is { } seed)
        {
            var c = Generate(seed);
            lock (NativeRunner.Lock)
            {
                output.WriteLine(c.Text);
                using var r0 = DiffHarness.NewRam();
                using var r1 = DiffHarness.NewRam();
                Assert.Null(Compare(c, Run(c, r0, false), Run(c, r1, true)));
            }
            return;
        }
        RunMany(run, 2000);
    }

    /// <summary>Code compiled for flat segments must not use them once DS has a base: the entry check hands the
    /// block back to tier 0, which applies the base.</summary>
    [DifferentialFact]
    public void A_data_segment_with_a_base_is_honoured_by_compiled_code()
    {
        // mov eax, [0x100]; add eax, 1; mov [0x104], eax; hlt
        var asm = new Assembler(32);
        asm.mov(AssemblerRegisters.eax, AssemblerRegisters.__dword_ptr[0x100]);
        asm.add(AssemblerRegisters.eax, 1);
        asm.mov(AssemblerRegisters.__dword_ptr[0x104], AssemblerRegisters.eax);
        var w = new CodeBytes();
        asm.Assemble(w, NativeRunner.TestRip);
        var c = new Case(0, w.ToArray(), "ds-based", new MachineState(), new byte[NativeRunner.BufferSize], new byte[NativeRunner.StackBelow + NativeRunner.StackAbove], RFlags.Status);
        c.Input.Gpr[4] = NativeRunner.StackTop;
        BitConverter.TryWriteBytes(c.Buffer.AsSpan(0x100), 41u);
        lock (NativeRunner.Lock)
        {
            using var ram = DiffHarness.NewRam();
            void Based(CpuCore cpu) => cpu.State->Ds.Base = NativeRunner.BufferAddress;
            var t0 = Run(c, ram, compiled: false, Based);
            var t1 = Run(c, ram, compiled: true, Based);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
            Assert.Equal(42UL, t1.Gpr[0]);
            Assert.Equal(42u, BitConverter.ToUInt32(t1.Buffer, 0x104));
            Assert.Null(Compare(c, t0, t1) is { } d && !d.Contains("did not run") ? d : null);
        }
    }
}
