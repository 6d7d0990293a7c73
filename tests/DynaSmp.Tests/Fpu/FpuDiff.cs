using System.Diagnostics;
using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using DynaSmp.Tests.Differential;
using Iced.Intel;
using Decoder = Iced.Intel.Decoder;
using Encoder = Iced.Intel.Encoder;

namespace DynaSmp.Tests.Fpu;

/// <summary>One floating-point differential case: the test instruction, the FXSAVE image it starts from (x87 registers,
/// FCW/FSW/FTW, MXCSR, XMM0-15), GPRs/RFLAGS and the data buffer, and which output bits are compared.</summary>
public sealed class FpCase
{
    public required string Group;
    public required ulong Seed;
    public required Instruction Insn;
    public required byte[] Code;
    public required byte[] Image;
    public required MachineState Input;
    public required byte[] Buffer;
    /// <summary>Per-byte masks over the output FXSAVE image and the buffer.</summary>
    public required byte[] ImageMask, BufferMask;
    public ulong FlagsMask = RFlags.Status;
    /// <summary>Set by groups whose results may differ from the host within a documented bound (transcendentals):
    /// returns null when the two output images agree within it.</summary>
    public Func<byte[], byte[], string?>? Tolerance;
}

/// <summary>
/// Differential runs for x87 and SSE floating point. Each case runs natively and in DynaSmp as the same code:
/// <c>FXSAVE64 [r12]; FXRSTOR64 [r13]; test instruction; FXSAVE64 [r14]; FXRSTOR64 [r12]</c>, so the whole FP state
/// (80-bit registers, FCW, FSW, FTW, MXCSR, XMM) is set from one image and compared from another, and the host's own
/// FP state is put back. FOP, FIP and FDP are not compared: DynaSmp does not model them exactly (and AMD parts save
/// them only when an exception is pending).
/// </summary>
/// <remarks>Environment: DYNASMP_FP_CASES (total over the FP groups of one run, default 100000), DYNASMP_DIFF_SEED (rerun
/// one case), DYNASMP_FP_COMPILED_EVERY (run the compiled tier on every Nth case, default 16).</remarks>
public static unsafe class FpuDiff
{
    public const ulong BaseSeed = 0xF10A_75EE_D000_0001;
    const ulong HostImageOff = 0x5000, InImageOff = 0x5200, OutImageOff = 0x5400;
    public const int MemOffset = 0x400; // RBX = buffer + 0x400; operands at [rbx + 16k]
    static ulong HostImage => NativeRunner.Base + HostImageOff;
    static ulong InImage => NativeRunner.Base + InImageOff;
    static ulong OutImage => NativeRunner.Base + OutImageOff;
    public static ulong MemBase => NativeRunner.BufferAddress + MemOffset;

    static int? EnvInt(string name) => int.TryParse(Environment.GetEnvironmentVariable(name), out int n) ? n : null;
    public static int TotalCases => EnvInt("DYNASMP_FP_CASES") ?? 100_000;
    static int CompiledEvery => Math.Max(1, EnvInt("DYNASMP_FP_COMPILED_EVERY") ?? 16);

    static byte[] Encode(Instruction insn, ulong ip)
    {
        var w = new CodeBytes();
        Encoder.Create(64, w).Encode(insn, ip);
        return w.ToArray();
    }

    static readonly byte[] Pre =
    [
        .. Encode(Instruction.Create(Iced.Intel.Code.Fxsave64_m512byte, new MemoryOperand(Register.R12)), 0),
        .. Encode(Instruction.Create(Iced.Intel.Code.Fxrstor64_m512byte, new MemoryOperand(Register.R13)), 0),
    ];
    static readonly byte[] Post =
    [
        .. Encode(Instruction.Create(Iced.Intel.Code.Fxsave64_m512byte, new MemoryOperand(Register.R14)), 0),
        .. Encode(Instruction.Create(Iced.Intel.Code.Fxrstor64_m512byte, new MemoryOperand(Register.R12)), 0),
    ];

    public static ulong InsnIp => NativeRunner.TestRip + (ulong)Pre.Length;

    /// <summary>Builds a case from a test instruction and an input image/buffer; all masks start as "compare everything
    /// DynaSmp models" (FOP/FIP/FDP and MXCSR_MASK excluded).</summary>
    public static FpCase Make(string group, ulong seed, Instruction insn, byte[] image, MachineState input, byte[] buffer)
    {
        byte[] bytes = Encode(insn, InsnIp);
        var decoded = Decoder.Create(64, bytes, InsnIp).Decode();
        var code = new byte[Pre.Length + bytes.Length + Post.Length];
        Pre.CopyTo(code, 0);
        bytes.CopyTo(code, Pre.Length);
        Post.CopyTo(code, Pre.Length + bytes.Length);
        var im = new byte[416];
        Array.Fill(im, (byte)0xFF);
        for (int k = 6; k < 24; k++) im[k] = 0;   // FOP, FIP, FCS, FDP, FDS
        for (int k = 28; k < 32; k++) im[k] = 0;  // MXCSR_MASK
        for (int r = 0; r < 8; r++) for (int k = 10; k < 16; k++) im[32 + 16 * r + k] = 0; // reserved bytes of each register slot
        var bm = new byte[buffer.Length];
        Array.Fill(bm, (byte)0xFF);
        return new FpCase
        {
            Group = group, Seed = seed, Insn = decoded, Code = code, Image = image, Input = input, Buffer = buffer,
            ImageMask = im, BufferMask = bm,
        };
    }

    /// <summary>Whether ST(<paramref name="st"/>) is empty in the case's input image.</summary>
    public static bool InputStEmpty(FpCase c, int st)
    {
        int top = (BitConverter.ToUInt16(c.Image, 2) >> 11) & 7;
        return (c.Image[4] & (1 << ((top + st) & 7))) == 0;
    }

    /// <summary>ST(<paramref name="st"/>) of the case's input image: biased exponent (sign removed) and significand.</summary>
    public static (int Exp, ulong Mant) InputSt(FpCase c, int st) =>
        (BitConverter.ToUInt16(c.Image, 40 + 16 * st) & 0x7FFF, BitConverter.ToUInt64(c.Image, 32 + 16 * st));

    public static MachineState BaseInput(Rng r)
    {
        var st = new MachineState { Rflags = 0x202 | (0x8D5 & r.NextU64()) };
        for (int k = 0; k < 16; k++) st.Gpr[k] = r.NextU64();
        st.Gpr[3] = MemBase;
        st.Gpr[4] = NativeRunner.StackTop;
        st.Gpr[12] = HostImage;
        st.Gpr[13] = InImage;
        st.Gpr[14] = OutImage;
        return st;
    }

    public sealed class Outcome
    {
        public required MachineState State;
        public required byte[] Image, Buffer;
    }

    static readonly byte[] OutFill = Enumerable.Repeat((byte)0xA5, 512).ToArray();

    /// <summary>Runs the case on the host. Callers hold <see cref="NativeRunner.Lock"/>.</summary>
    public static Outcome RunNative(FpCase c)
    {
        c.Buffer.CopyTo(NativeRunner.Memory(NativeRunner.BufferAddress, c.Buffer.Length));
        c.Image.CopyTo(NativeRunner.Memory(InImage, 512));
        OutFill.CopyTo(NativeRunner.Memory(OutImage, 512));
        var st = NativeRunner.Run(c.Code, c.Input);
        return new Outcome
        {
            State = st,
            Image = NativeRunner.Memory(OutImage, 512).ToArray(),
            Buffer = NativeRunner.Memory(NativeRunner.BufferAddress, c.Buffer.Length).ToArray(),
        };
    }

    /// <summary>Runs the case in DynaSmp; null and a message when it did not reach the HLT after the code.</summary>
    public static (Outcome? Result, string? Error) RunDynaSmp(FpCase c, GuestRam ram, bool compiled)
    {
        ram.Write(NativeRunner.BufferAddress, c.Buffer);
        ram.Write(InImage, c.Image);
        ram.Write(OutImage, OutFill);
        try
        {
            return EmulatedRun.Run(ram, c.Code, c.Input, compiled, flat32: false, 100, (cpu, exit) =>
            {
                if (exit != ExitReason.Hlt)
                    return ((Outcome?)null, (string?)$"exit {exit}{(exit == ExitReason.Exception ? " " + Vector.Name(cpu.ExitVector) : "")} ({cpu.ExitMessage}); the host ran it");
                CpuState* s = cpu.State;
                var o = new MachineState { Rflags = Flags.Get(s) };
                for (int k = 0; k < 16; k++) o.Gpr[k] = s->Gpr[k];
                return (new Outcome
                {
                    State = o,
                    Image = ram.Span(OutImage, 512).ToArray(),
                    Buffer = ram.Span(NativeRunner.BufferAddress, c.Buffer.Length).ToArray(),
                }, null);
            });
        }
        catch (Exception e)
        {
            return (null, $"host exception escaped DynaSmp: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Differences between the host and DynaSmp under the case's masks, or null.</summary>
    public static string? Compare(FpCase c, Outcome n, Outcome d)
    {
        var sb = new StringBuilder();
        for (int k = 0; k < 16; k++)
            if (n.State.Gpr[k] != d.State.Gpr[k]) sb.AppendLine($"  GPR{k} native 0x{n.State.Gpr[k]:x} dynasmp 0x{d.State.Gpr[k]:x}");
        if (((n.State.Rflags ^ d.State.Rflags) & c.FlagsMask) != 0)
            sb.AppendLine($"  RFLAGS native 0x{n.State.Rflags & RFlags.Status:x} dynasmp 0x{d.State.Rflags & RFlags.Status:x} (input 0x{c.Input.Rflags & RFlags.Status:x})");
        bool imageDiffers = false;
        for (int k = 0; k < c.ImageMask.Length; k++) imageDiffers |= ((n.Image[k] ^ d.Image[k]) & c.ImageMask[k]) != 0;
        if (imageDiffers)
        {
            string? tol = c.Tolerance?.Invoke(n.Image, d.Image);
            if (c.Tolerance != null && tol == null) Interlocked.Increment(ref _withinBound);
            if (c.Tolerance == null || tol != null)
            {
                if (tol != null) sb.AppendLine("  " + tol);
                sb.AppendLine("  " + DescribeImage("native ", n.Image));
                sb.AppendLine("  " + DescribeImage("dynasmp", d.Image));
                sb.AppendLine("  " + DescribeImage("input  ", c.Image));
            }
        }
        int shown = 0;
        for (int k = 0; k < c.Buffer.Length; k++)
        {
            if (((n.Buffer[k] ^ d.Buffer[k]) & c.BufferMask[k]) == 0) continue;
            int q = k & ~7;
            if (shown++ < 4)
                sb.AppendLine($"  buffer +0x{q:x}: native {BitConverter.ToUInt64(n.Buffer, q):x16} dynasmp {BitConverter.ToUInt64(d.Buffer, q):x16} (input {BitConverter.ToUInt64(c.Buffer, q):x16})");
            k = q + 7;
        }
        return sb.Length == 0 ? null : sb.ToString();
    }

    static int _withinBound;

    public static string DescribeImage(string who, byte[] im)
    {
        var sb = new StringBuilder();
        ushort fsw = BitConverter.ToUInt16(im, 2);
        sb.Append($"{who} FCW {BitConverter.ToUInt16(im, 0):x4} FSW {fsw:x4} (TOP {(fsw >> 11) & 7}) FTW {im[4]:x2} MXCSR {BitConverter.ToUInt32(im, 24):x8} ST:");
        for (int r = 0; r < 8; r++) sb.Append($" {BitConverter.ToUInt16(im, 32 + 16 * r + 8):x4}:{BitConverter.ToUInt64(im, 32 + 16 * r):x16}");
        sb.Append(" XMM:");
        for (int x = 0; x < 16; x++) sb.Append($" {BitConverter.ToUInt64(im, 160 + 16 * x + 8):x16}_{BitConverter.ToUInt64(im, 160 + 16 * x):x16}");
        return sb.ToString();
    }

    public static ulong CaseSeed(string group, int index, ulong runSeed) => DiffHarness.CaseSeed(group, index, runSeed);

    /// <summary>Runs <paramref name="n"/> cases of one group (or the single <paramref name="caseSeed"/> / DYNASMP_DIFF_SEED case).</summary>
    /// <param name="compiledEvery">Run the compiled tier on every Nth case (default DYNASMP_FP_COMPILED_EVERY).</param>
    public static GroupResult RunGroup(string name, Func<ulong, FpCase> generate, int n, ulong runSeed = BaseSeed, ulong? caseSeed = null,
        int? compiledEvery = null)
    {
        int every = compiledEvery ?? CompiledEvery;
        string? why = NativeRunner.Unavailable;
        if (why != null) throw new InvalidOperationException("native runner unavailable: " + why);
        ulong? fixedSeed = caseSeed ?? DiffHarness.FixedSeed;
        if (fixedSeed != null) n = 1;
        int failed = 0, compiledRuns = 0, run = 0, relaxed = 0;
        int withinBefore = Volatile.Read(ref _withinBound);
        var details = new StringBuilder();
        var byMnemonic = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var sw = Stopwatch.StartNew();
        lock (NativeRunner.Lock)
        {
            using var ram = DiffHarness.NewRam();
            for (int idx = 0; idx < n && failed < 100; idx++)
            {
                ulong seed = fixedSeed ?? CaseSeed(name, idx, runSeed);
                var c = generate(seed);
                run++;
                var quirk = FpVendorQuirks.ToRelax(c);
                if (quirk != null) quirk.CompareOnlyAgreed(c);
                if (c.Tolerance != null || quirk != null) relaxed++;
                var native = RunNative(c);
                string? diff = null, tier = "interpreter";
                var (emu, err) = RunDynaSmp(c, ram, compiled: false);
                diff = err ?? Compare(c, native, emu!);
                if (diff == null && (idx % every == 0 || fixedSeed != null))
                {
                    tier = "compiled";
                    compiledRuns++;
                    (emu, err) = RunDynaSmp(c, ram, compiled: true);
                    diff = err ?? Compare(c, native, emu!);
                }
                if (diff == null) continue;
                failed++;
                string key = $"{c.Insn.Mnemonic} ({tier})";
                byMnemonic[key] = byMnemonic.GetValueOrDefault(key) + 1;
                if (failed <= 40 && byMnemonic[key] <= 2)
                {
                    details.AppendLine($"[{name}] {tier}: {c.Insn}   seed 0x{seed:x}   ({HostCpu.Vendor})");
                    details.AppendLine($"  rerun: DYNASMP_DIFF_SEED=0x{seed:x} dotnet test tests/DynaSmp.Tests -c Release --filter FullyQualifiedName~Fpu.FpuDifferentialTests.{name}");
                    details.Append(diff);
                }
            }
        }
        var summary = new StringBuilder();
        summary.Append($"{name}: {run} cases ({compiledRuns} also compiled), {failed} failed, {sw.Elapsed.TotalSeconds:F1} s");
        if (fixedSeed != null) summary.Append($", fixed case seed 0x{fixedSeed:x}");
        else summary.Append(runSeed == BaseSeed ? ", fixed run" : $", random run seed 0x{runSeed:x} (rerun: DYNASMP_DIFF_RUN_SEED=0x{runSeed:x})");
        if (relaxed > 0)
            summary.Append($"; {relaxed} compared only where Intel and AMD agree or within a documented error bound " +
                           $"({Volatile.Read(ref _withinBound) - withinBefore} comparisons differed from the host within the bound)");
        summary.Append($"\n  {HostCpu.Description}");
        foreach (var (k, v) in byMnemonic) summary.Append($"\n  {k}: {v}");
        return new GroupResult(name, run, compiledRuns, failed, relaxed, summary.ToString(), details.ToString());
    }
}
