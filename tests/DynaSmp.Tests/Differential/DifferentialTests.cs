using System.Runtime.InteropServices;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Differential;

/// <summary>A fact that is skipped, with the reason, on hosts that cannot run x64 code natively under Linux.</summary>
public sealed class DifferentialFactAttribute : FactAttribute
{
    internal static string? SkipReason =>
        !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64
            ? "differential tests run instructions on the host CPU: they need Linux on x64" : null;

    public DifferentialFactAttribute() => Skip = SkipReason;
}

/// <summary>The theory form of <see cref="DifferentialFactAttribute"/>.</summary>
public sealed class DifferentialTheoryAttribute : TheoryAttribute
{
    public DifferentialTheoryAttribute() => Skip = DifferentialFactAttribute.SkipReason;
}

[CollectionDefinition("Differential", DisableParallelization = true)]
public sealed class DifferentialCollection;

/// <summary>
/// Random instructions run on the host CPU and in DynaSmp (both tiers), one test per instruction group: the fixed run
/// (the same cases on every run) here, the random run in <see cref="DifferentialRandomTests"/>.
/// DYNASMP_DIFF_CASES sets the total case count, DYNASMP_DIFF_SEED reruns one case (printed on failure).
/// </summary>
[Collection("Differential")]
public sealed class DifferentialTests(ITestOutputHelper output)
{
    void Run(string group) => Check(output, DiffHarness.RunGroup(group));

    internal static void Check(ITestOutputHelper output, GroupResult r)
    {
        output.WriteLine(r.Summary);
        if (r.Failed > 0) Assert.Fail(r.Summary + "\n\n" + r.Report);
        Assert.True(r.Cases > 0 || r.Summary.Contains("supports none", StringComparison.Ordinal), r.Summary);
    }

    [DifferentialFact] public void FlagSequences() => Run(nameof(FlagSequences));
    [DifferentialFact] public void Alu() => Run(nameof(Alu));
    [DifferentialFact] public void IncDecNegNot() => Run(nameof(IncDecNegNot));
    [DifferentialFact] public void MovLeaXchg() => Run(nameof(MovLeaXchg));
    [DifferentialFact] public void SetccCmovcc() => Run(nameof(SetccCmovcc));
    [DifferentialFact] public void Convert() => Run(nameof(Convert));
    [DifferentialFact] public void LahfSahf() => Run(nameof(LahfSahf));
    [DifferentialFact] public void PushPop() => Run(nameof(PushPop));
    [DifferentialFact] public void ShiftRotate() => Run(nameof(ShiftRotate));
    [DifferentialFact] public void MulDiv() => Run(nameof(MulDiv));
    [DifferentialFact] public void BitTest() => Run(nameof(BitTest));
    [DifferentialFact] public void BitScan() => Run(nameof(BitScan));
    [DifferentialFact] public void XaddCmpxchg() => Run(nameof(XaddCmpxchg));
    [DifferentialFact] public void StringOps() => Run(nameof(StringOps));
    [DifferentialFact] public void Bmi1() => Run(nameof(Bmi1));
    [DifferentialFact] public void SseMove() => Run(nameof(SseMove));
    [DifferentialFact] public void SseLogicCompare() => Run(nameof(SseLogicCompare));
    [DifferentialFact] public void SseArith() => Run(nameof(SseArith));
    [DifferentialFact] public void SseShuffle() => Run(nameof(SseShuffle));
    [DifferentialFact] public void SseShift() => Run(nameof(SseShift));
    [DifferentialFact] public void Ssse3() => Run(nameof(Ssse3));
    [DifferentialFact] public void Sse3Move() => Run(nameof(Sse3Move));
    [DifferentialFact] public void Sse41Integer() => Run(nameof(Sse41Integer));
    [DifferentialFact] public void Sse41MoveInsertExtract() => Run(nameof(Sse41MoveInsertExtract));
    [DifferentialFact] public void Sse42() => Run(nameof(Sse42));

    /// <summary>The runner itself: ADD RAX, RCX on the host with values whose result and flags the SDM fixes.</summary>
    [DifferentialFact]
    public void Native_runner_executes_on_the_host()
    {
        Assert.Null(NativeRunner.Unavailable);
        var input = new MachineState { Rflags = 0x202 };
        input.Gpr[0] = 0xFFFF_FFFF_FFFF_FFFF; // RAX
        input.Gpr[1] = 1;                     // RCX
        input.Gpr[4] = NativeRunner.StackTop;
        input.Xmm[6] = 0x1234;
        MachineState o;
        lock (NativeRunner.Lock) o = NativeRunner.Run([0x48, 0x01, 0xC8], input); // add rax, rcx
        Assert.Equal(0UL, o.Gpr[0]);
        Assert.Equal(1UL, o.Gpr[1]);
        Assert.Equal(NativeRunner.StackTop, o.Gpr[4]);
        Assert.Equal(0x1234UL, o.Xmm[6]);
        // CF, PF, AF, ZF set; SF, OF clear (SDM ADD: 0xFFFF_FFFF_FFFF_FFFF + 1 wraps to 0).
        Assert.Equal(0x55UL, o.Rflags & 0x8D5);
    }

    /// <summary>The comparison must notice a wrong result: corrupt the native result and expect a register diff.</summary>
    [DifferentialFact]
    public void Harness_reports_a_register_mismatch()
    {
        var g = Groups.Get("Alu");
        var c = DiffHarness.Generate(g, 12345);
        lock (NativeRunner.Lock)
        {
            var native = DiffHarness.RunNative(c);
            using var ram = DiffHarness.NewRam();
            Assert.Null(DiffHarness.RunAndCompare(c, native, ram, compiled: false));
            native.State.Gpr[13] ^= 0x10;
            string? diff = DiffHarness.RunAndCompare(c, native, ram, compiled: false);
            Assert.NotNull(diff);
            Assert.Contains("r13", diff);
        }
    }

    /// <summary>Every generated memory operand stays in the data buffer or the stack window, whatever the addressing form.</summary>
    [DifferentialFact]
    public void Generated_memory_operands_stay_in_the_compared_memory()
    {
        Assert.Null(NativeRunner.Unavailable);
        foreach (var g in Groups.All)
        for (int k = 0; k < 300; k++)
        {
            if (g.Codes.Length == 0) break;
            var c = DiffHarness.Generate(g, DiffHarness.CaseSeed("memcheck", k));
            if (!c.Insn.HasOpKind(OpKind.Memory) || c.Insn.Mnemonic == Mnemonic.Lea) continue; // LEA does not access memory
            ulong addr = UndefinedResults.MemoryAddress(c.Insn, c.Input);
            int size = c.Insn.MemorySize.GetSize();
            bool inBuffer = addr >= NativeRunner.BufferAddress && addr + (ulong)size <= NativeRunner.BufferAddress + NativeRunner.BufferSize;
            bool inStack = addr >= c.Rsp - NativeRunner.StackBelow && addr + (ulong)size <= c.Rsp + NativeRunner.StackAbove;
            Assert.True(inBuffer || inStack, $"{g.Name} seed {c.Seed:x}: {c.Insn} at 0x{addr:x}");
        }
    }
}
