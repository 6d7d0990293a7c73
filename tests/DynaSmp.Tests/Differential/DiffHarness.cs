using System.Diagnostics;
using System.Globalization;
using System.Text;
using Decoder = Iced.Intel.Decoder;
using Encoder = Iced.Intel.Encoder;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Differential;

public sealed record GroupResult(string Group, int Cases, int CompiledCases, int Failed, int VendorRelaxed, string Summary, string Report);

/// <summary>
/// Generates cases, runs each natively and in DynaSmp (interpreter, and the compiled tier), and compares
/// GPRs, RIP, the status flags and DF the SDM defines for the case, XMM0-15, the data buffer and the stack window.
/// </summary>
/// <remarks>Environment: DYNASMP_DIFF_CASES (total over all groups, default 100000), DYNASMP_DIFF_SEED (run exactly
/// that one case per selected group), DYNASMP_DIFF_COMPILED_EVERY (run the compiled tier on every Nth case, default 1 = all),
/// DYNASMP_DIFF_RUN_SEED (the random run's seed), DYNASMP_DIFF_RANDOM_CASES (the random run's total, default 20000).</remarks>
public static unsafe class DiffHarness
{
    /// <summary>The fixed run's seed: the same cases on every run and every host.</summary>
    public const ulong BaseSeed = 0xD1FF_5EED_0001;
    const int MaxDetails = 5;
    static int MaxFailures => EnvInt("DYNASMP_DIFF_MAX_FAILURES") ?? 100;

    public static int TotalCases => EnvInt("DYNASMP_DIFF_CASES") ?? 100_000;
    public static int RandomTotalCases => EnvInt("DYNASMP_DIFF_RANDOM_CASES") ?? 20_000;

    /// <summary>The random run's seed: DYNASMP_DIFF_RUN_SEED, or one drawn once per test process (printed with every result).</summary>
    public static ulong RunSeed => ParseSeed(Environment.GetEnvironmentVariable("DYNASMP_DIFF_RUN_SEED")) ?? DrawnRunSeed;
    static readonly ulong DrawnRunSeed = (ulong)Random.Shared.NextInt64() ^ (ulong)Environment.TickCount64 << 40;
    public static int CompiledEvery => Math.Max(1, EnvInt("DYNASMP_DIFF_COMPILED_EVERY") ?? 1);

    public static ulong? FixedSeed => ParseSeed(Environment.GetEnvironmentVariable("DYNASMP_DIFF_SEED"));

    internal static ulong? ParseSeed(string? v)
    {
        if (string.IsNullOrWhiteSpace(v)) return null;
        v = v.Trim();
        return v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.Parse(v.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : ulong.Parse(v, CultureInfo.InvariantCulture);
    }

    static readonly bool Trace = Environment.GetEnvironmentVariable("DYNASMP_DIFF_TRACE") == "1";

    static int? EnvInt(string name) => int.TryParse(Environment.GetEnvironmentVariable(name), out int n) ? n : null;

    static ulong NameHash(string s)
    {
        ulong h = 0xCBF2_9CE4_8422_2325;
        foreach (char ch in s) h = (h ^ ch) * 0x100_0000_01B3;
        return h;
    }

    public static ulong CaseSeed(string group, int index, ulong runSeed = BaseSeed) => Rng.Mix(runSeed ^ NameHash(group), (ulong)index);

    public static int CasesFor(InstructionGroup g, int total)
    {
        int sum = 0;
        foreach (var x in Groups.All) sum += x.Weight;
        return Math.Max(1, (int)((long)total * g.Weight / sum));
    }

    // ---- generation ----

    public static DiffCase Generate(InstructionGroup g, ulong seed)
    {
        if (g.Name == "FlagSequences") return GenerateSequence(seed);
        var codes = g.Codes;
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var b = new CaseBuilder(attempt == 0 ? seed : Rng.Mix(seed, (ulong)attempt));
            var code = b.R.Pick(codes);
            Instruction insn;
            try
            {
                insn = g.Make != null ? g.Make(b, code) : b.FromCode(code);
                if (g.Fixup != null && !g.Fixup(b, ref insn)) continue;
            }
            catch (InvalidOperationException) { continue; }
            var w = new CodeBytes();
            if (!Encoder.Create(64, w).TryEncode(insn, NativeRunner.TestRip, out _, out _)) continue; // e.g. AH with REX
            byte[] bytes = w.ToArray();
            var dec = Decoder.Create(64, bytes, NativeRunner.TestRip);
            var decoded = dec.Decode();
            if (decoded.Code == Code.INVALID || decoded.Length != bytes.Length) continue;
            var mask = new CompareMask { Flags = RFlags.Status | RFlags.DF };
            for (int k = 0; k < 16; k++) if ((b.IgnoreGpr & (1 << k)) != 0) mask.Gpr[k] = 0;
            UndefinedResults.Apply(decoded, b.St, b.ReadMem, mask);
            return new DiffCase
            {
                Group = g.Name, Seed = seed, Code = bytes, Insn = decoded, Input = b.St, Buffer = b.Buf, Stack = b.Stack, Mask = mask,
            };
        }
        throw new InvalidOperationException($"{g.Name}: could not generate an encodable case from seed 0x{seed:x}");
    }

    /// <summary>A straight-line sequence of register-only instructions. Rejects any instruction that reads a flag
    /// an earlier one left undefined (decided from each shift's actual count); the compared flags are those defined at the end.</summary>
    public static DiffCase GenerateSequence(ulong seed)
    {
        var b = new CaseBuilder(seed);
        int want = b.R.Next(2, 7);
        var bytes = new List<byte>();
        Instruction first = default;
        RflagsBits undefined = RflagsBits.None;
        int made = 0;
        for (int attempt = 0; made < want && attempt < 200; attempt++)
        {
            var g = Groups.Get(b.R.Pick(Groups.SequenceParts));
            var code = b.R.Pick(g.Codes);
            // Register pins are per-instruction input constraints; earlier instructions change registers at run time
            // anyway, and register-only forms cannot fault, so each instruction starts unconstrained.
            b.Pinned = 0;
            b.Exclude = 0;
            Instruction insn;
            try
            {
                insn = g.Make != null ? g.Make(b, code) : b.FromCode(code);
                if (g.Fixup != null && !g.Fixup(b, ref insn)) continue;
            }
            catch (InvalidOperationException) { continue; }
            bool memory = false;
            for (int op = 0; op < insn.OpCount; op++) memory |= insn.GetOpKind(op) == OpKind.Memory;
            if (memory || insn.IsStackInstruction) continue;
            var w = new CodeBytes();
            ulong ip = NativeRunner.TestRip + (ulong)bytes.Count;
            if (!Encoder.Create(64, w).TryEncode(insn, ip, out _, out _)) continue;
            byte[] one = w.ToArray();
            var decoded = Decoder.Create(64, one, ip).Decode();
            if (decoded.Code == Code.INVALID || decoded.Length != one.Length) continue;
            if ((decoded.RflagsRead & undefined) != 0) continue; // would read a value the SDM leaves undefined
            // Shifts by CL or by a count that masks to 0 may leave flags alone or not: only a known non-zero
            // immediate count gives a fixed set of defined flags.
            if (UndefinedResults.IsShift(decoded.Mnemonic)
                && (decoded.GetOpKind(decoded.OpCount - 1) != OpKind.Immediate8 || UndefinedResults.MaskedCount(decoded, 0) == 0)) continue;
            var (undefinedHere, modifiedHere) = UndefinedResults.StaticFlags(decoded);
            undefined = (undefined & ~modifiedHere) | undefinedHere;
            if (made == 0) first = decoded;
            bytes.AddRange(one);
            made++;
        }
        if (made == 0) throw new InvalidOperationException($"FlagSequences: nothing encodable from seed 0x{seed:x}");
        var mask = new CompareMask { Flags = (RFlags.Status | RFlags.DF) & ~UndefinedResults.FlagBits(undefined) };
        for (int k = 0; k < 16; k++) if ((b.IgnoreGpr & (1 << k)) != 0) mask.Gpr[k] = 0;
        return new DiffCase
        {
            Group = "FlagSequences", Seed = seed, Code = bytes.ToArray(), Insn = first, Input = b.St, Buffer = b.Buf, Stack = b.Stack, Mask = mask,
        };
    }

    // ---- execution ----

    public sealed class NativeResult
    {
        public required MachineState State;
        public required byte[] Buffer, Stack;
    }

    /// <summary>Runs the case on the host. Callers hold <see cref="NativeRunner.Lock"/>.</summary>
    public static NativeResult RunNative(DiffCase c)
    {
        c.Buffer.CopyTo(NativeRunner.Memory(NativeRunner.BufferAddress, c.Buffer.Length));
        ulong stackLo = c.Rsp - NativeRunner.StackBelow;
        c.Stack.CopyTo(NativeRunner.Memory(stackLo, c.Stack.Length));
        var st = NativeRunner.Run(c.Code, c.Input);
        return new NativeResult
        {
            State = st,
            Buffer = NativeRunner.Memory(NativeRunner.BufferAddress, c.Buffer.Length).ToArray(),
            Stack = NativeRunner.Memory(stackLo, c.Stack.Length).ToArray(),
        };
    }

    public static GuestRam NewRam() => new(NewRamSize);

    /// <summary>Bytes of RAM <see cref="NewRam"/> gives: the native runner's region, rounded up to a MiB.</summary>
    public static ulong NewRamSize => (NativeRunner.Base + NativeRunner.RegionSize + 0xFFFFF) & ~0xFFFFFUL;

    /// <summary>Runs the case in DynaSmp and compares with <paramref name="native"/> under <paramref name="mask"/> (default: the
    /// case's own). Returns null when they agree.</summary>
    public static string? RunAndCompare(DiffCase c, NativeResult native, GuestRam ram, bool compiled, CompareMask? mask = null)
    {
        mask ??= c.Mask;
        ram.Write(NativeRunner.BufferAddress, c.Buffer);
        ulong stackLo = c.Rsp - NativeRunner.StackBelow;
        ram.Write(stackLo, c.Stack);
        try
        {
            return EmulatedRun.Run(ram, c.Code, c.Input, compiled, flat32: false, 1000, (cpu, exit) => Compare(c, native, ram, compiled, mask, cpu, exit, stackLo));
        }
        catch (Exception e)
        {
            return $"host exception escaped DynaSmp: {e.GetType().Name}: {e.Message}";
        }
    }

    static string? Compare(DiffCase c, NativeResult native, GuestRam ram, bool compiled, CompareMask mask, CpuCore cpu, ExitReason exit, ulong stackLo)
    {
        CpuState* s = cpu.State;
        var sb = new StringBuilder();
        if (exit != ExitReason.Hlt)
        {
            sb.Append($"  exit: {exit}");
            if (exit == ExitReason.Exception) sb.Append($" {Vector.Name(cpu.ExitVector)} ({cpu.ExitMessage})");
            else if (cpu.ExitMessage != null) sb.Append($" ({cpu.ExitMessage})");
            sb.AppendLine("; the host ran it without a fault");
            return sb.ToString();
        }
        if (compiled && cpu.CompiledBlockEntries == 0) sb.AppendLine("  the compiled tier did not run (block was interpreted)");
        ulong endRip = NativeRunner.TestRip + (ulong)c.Code.Length + 1;
        if (s->Rip != endRip) sb.AppendLine($"  RIP after HLT: native 0x{endRip:x} dynasmp 0x{s->Rip:x}");
        for (int k = 0; k < 16; k++)
        {
            if (((s->Gpr[k] ^ native.State.Gpr[k]) & mask.Gpr[k]) != 0)
                sb.AppendLine($"  {RegName(k),-4} native 0x{native.State.Gpr[k]:x16} dynasmp 0x{s->Gpr[k]:x16} (input 0x{c.Input.Gpr[k]:x16}{(mask.Gpr[k] != ulong.MaxValue ? $"; compared bits 0x{mask.Gpr[k]:x}" : "")})");
        }
        ulong emuFlags = Flags.Get(s);
        if (((emuFlags ^ native.State.Rflags) & mask.Flags) != 0)
            sb.AppendLine($"  RFLAGS native {FlagString(native.State.Rflags, mask.Flags)} dynasmp {FlagString(emuFlags, mask.Flags)} (input {FlagString(c.Input.Rflags, mask.Flags)}; compared {FlagString(mask.Flags, mask.Flags)})");
        for (int k = 0; k < 16; k++)
        {
            ulong lo = s->Xmm[2 * k], hi = s->Xmm[2 * k + 1];
            if (lo != native.State.Xmm[2 * k] || hi != native.State.Xmm[2 * k + 1])
                sb.AppendLine($"  XMM{k,-2} native {native.State.Xmm[2 * k + 1]:x16}_{native.State.Xmm[2 * k]:x16} dynasmp {hi:x16}_{lo:x16} (input {c.Input.Xmm[2 * k + 1]:x16}_{c.Input.Xmm[2 * k]:x16})");
        }
        CompareMemory(sb, "buffer", NativeRunner.BufferAddress, c.Buffer, native.Buffer, ram.Span(NativeRunner.BufferAddress, c.Buffer.Length));
        CompareMemory(sb, "stack", stackLo, c.Stack, native.Stack, ram.Span(stackLo, c.Stack.Length));
        return sb.Length == 0 ? null : sb.ToString();
    }

    static void CompareMemory(StringBuilder sb, string what, ulong addr, byte[] input, byte[] native, ReadOnlySpan<byte> emu)
    {
        int shown = 0;
        for (int k = 0; k < native.Length; k++)
        {
            if (native[k] == emu[k]) continue;
            int q = k & ~7;
            if (shown++ < 4)
                sb.AppendLine($"  {what} qword 0x{addr + (ulong)q:x}: native 0x{BitConverter.ToUInt64(native, q):x16} dynasmp 0x{Read64(emu, q):x16} (input 0x{BitConverter.ToUInt64(input, q):x16})");
            k = q + 7;
        }
        if (shown > 4) sb.AppendLine($"  ... {shown - 4} more differing {what} qwords");
    }

    static ulong Read64(ReadOnlySpan<byte> s, int off) => BitConverter.ToUInt64(s.Slice(off, 8));

    static readonly string[] Names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    static string RegName(int k) => Names[k];

    static string FlagString(ulong f, ulong mask)
    {
        var sb = new StringBuilder();
        (ulong Bit, char Ch)[] bits = [(RFlags.OF, 'O'), (RFlags.DF, 'D'), (RFlags.SF, 'S'), (RFlags.ZF, 'Z'), (RFlags.AF, 'A'), (RFlags.PF, 'P'), (RFlags.CF, 'C')];
        foreach (var (bit, ch) in bits) sb.Append((mask & bit) == 0 ? '-' : (f & bit) != 0 ? ch : char.ToLowerInvariant(ch));
        return sb.ToString();
    }

    public static string Describe(DiffCase c, string tier, string diff)
    {
        var sb = new StringBuilder();
        var fmt = new NasmFormatter();
        var o = new StringOutput();
        fmt.Format(c.Insn, o);
        sb.AppendLine($"[{c.Group}] {tier}: {o.ToStringAndReset()}   bytes {Convert.ToHexString(c.Code)}   seed 0x{c.Seed:x}   ({HostCpu.Vendor})");
        sb.AppendLine($"  rerun: DYNASMP_DIFF_SEED=0x{c.Seed:x} dotnet test tests/DynaSmp.Tests -c Release --filter FullyQualifiedName~Differential.DifferentialTests.{c.Group}");
        sb.Append(diff);
        sb.Append("  input:");
        for (int k = 0; k < 16; k++) sb.Append($" {RegName(k)}=0x{c.Input.Gpr[k]:x}");
        sb.AppendLine($" rflags=0x{c.Input.Rflags:x}");
        return sb.ToString();
    }

    // ---- a group run ----

    /// <summary>Runs one case natively and in DynaSmp's interpreter, then (if it agreed and <paramref name="alsoCompiled"/>)
    /// in the compiled tier. Callers hold <see cref="NativeRunner.Lock"/>. <c>Relaxed</c> is the vendor quirk whose
    /// Intel-only results were left out of the comparison on this host, if any.</summary>
    public static (string? Diff, string Tier, VendorQuirk? Relaxed) RunCase(DiffCase c, GuestRam ram, bool alsoCompiled = true)
    {
        var native = RunNative(c);
        // On a host of the other vendor, an Intel-defined behaviour is compared only where both vendors agree.
        CompareMask mask = c.Mask;
        var quirk = VendorQuirks.ToRelax(c);
        if (quirk != null)
        {
            mask = c.Mask.Clone();
            quirk.CompareOnlyAgreed(c, mask);
        }
        string? diff = RunAndCompare(c, native, ram, compiled: false, mask);
        if (diff != null || !alsoCompiled) return (diff, "interpreter", quirk);
        return (RunAndCompare(c, native, ram, compiled: true, mask), "compiled", quirk);
    }

    /// <summary>Runs one group: the fixed run (<see cref="BaseSeed"/>, <see cref="TotalCases"/>) by default, or
    /// <paramref name="cases"/> total cases drawn from <paramref name="runSeed"/>.</summary>
    public static GroupResult RunGroup(string name, ulong runSeed = BaseSeed, int? cases = null)
    {
        string? why = NativeRunner.Unavailable;
        if (why != null) throw new InvalidOperationException("native runner unavailable: " + why);
        var g = Groups.Get(name);
        if (g.Codes.Length == 0)
            return new GroupResult(name, 0, 0, 0, 0, $"{name}: the host supports none of this group's instructions ({g.SkippedForHost} skipped); {HostCpu.Description}", "");
        ulong? fixedSeed = FixedSeed;
        int n = fixedSeed != null ? 1 : CasesFor(g, cases ?? TotalCases);
        int every = fixedSeed != null ? 1 : CompiledEvery;
        int failed = 0, compiledRuns = 0, run = 0, relaxed = 0;
        var byMnemonic = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var byQuirk = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var details = new StringBuilder();
        var sw = Stopwatch.StartNew();
        lock (NativeRunner.Lock)
        {
            using var ram = NewRam();
            for (int idx = 0; idx < n && failed < MaxFailures; idx++)
            {
                ulong seed = fixedSeed ?? CaseSeed(name, idx, runSeed);
                var c = Generate(g, seed);
                if (Trace) Console.Error.WriteLine($"{name} 0x{seed:x}: {Convert.ToHexString(c.Code)} {c.Insn}");
                run++;
                var (diff, tier, quirk) = RunCase(c, ram, idx % every == 0);
                if (tier == "compiled") compiledRuns++;
                if (quirk != null)
                {
                    relaxed++;
                    byQuirk[quirk.Name] = byQuirk.GetValueOrDefault(quirk.Name) + 1;
                }
                if (diff == null) continue;
                failed++;
                string key = $"{c.Insn.Mnemonic} ({tier}{(diff.Contains("#UD", StringComparison.Ordinal) ? ", #UD" : "")})";
                byMnemonic[key] = byMnemonic.GetValueOrDefault(key) + 1;
                if (failed <= MaxDetails) details.AppendLine(Describe(c, tier, diff));
            }
        }
        sw.Stop();
        var summary = new StringBuilder();
        summary.Append($"{name}: {run} cases ({compiledRuns} also compiled), {failed} failed, {sw.Elapsed.TotalSeconds:F1} s, {g.Codes.Length} opcodes");
        if (g.SkippedForHost > 0) summary.Append($" ({g.SkippedForHost} skipped: host lacks the CPUID feature)");
        if (fixedSeed != null) summary.Append($", fixed case seed 0x{fixedSeed:x}");
        else summary.Append(runSeed == BaseSeed ? ", fixed run" : $", random run seed 0x{runSeed:x} (rerun: DYNASMP_DIFF_RUN_SEED=0x{runSeed:x})");
        if (failed >= MaxFailures) summary.Append($"; stopped after {MaxFailures} failures");
        summary.Append($"\n  {HostCpu.Description}");
        summary.Append(relaxed == 0 ? "; no vendor-specific case"
            : $"; {relaxed} case(s) compared only where Intel and AMD agree (DynaSmp models Intel; the host is {HostCpu.Vendor})");
        foreach (var (k, v) in byQuirk) summary.Append($"\n  vendor quirk \"{k}\": {v}");
        foreach (var (k, v) in byMnemonic) summary.Append($"\n  {k}: {v}");
        return new GroupResult(name, run, compiledRuns, failed, relaxed, summary.ToString(), details.ToString());
    }
}
