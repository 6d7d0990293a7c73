using DynaSmp.Tests.Differential;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Fpu;

/// <summary>The FP differential groups (see <see cref="FpuDiff"/>): each runs its share of DYNASMP_FP_CASES fixed-seed
/// cases on the host and in DynaSmp, comparing the whole x87/SSE state bit for bit.</summary>
[Collection("Differential")]
public sealed class FpuDifferentialTests(ITestOutputHelper output)
{
    /// <summary>Instruction sets of the x87 groups, with their share of the case budget.</summary>
    public static readonly (string Name, int Weight, Mnemonic[] Mnemonics)[] X87Groups =
    [
        ("X87Arith", 30,
        [
            Mnemonic.Fadd, Mnemonic.Faddp, Mnemonic.Fiadd, Mnemonic.Fsub, Mnemonic.Fsubp, Mnemonic.Fisub,
            Mnemonic.Fsubr, Mnemonic.Fsubrp, Mnemonic.Fisubr, Mnemonic.Fmul, Mnemonic.Fmulp, Mnemonic.Fimul,
            Mnemonic.Fdiv, Mnemonic.Fdivp, Mnemonic.Fidiv, Mnemonic.Fdivr, Mnemonic.Fdivrp, Mnemonic.Fidivr,
        ]),
        ("X87LoadStore", 25,
        [
            Mnemonic.Fld, Mnemonic.Fild, Mnemonic.Fbld, Mnemonic.Fst, Mnemonic.Fstp, Mnemonic.Fstpnce, Mnemonic.Fist,
            Mnemonic.Fistp, Mnemonic.Fisttp, Mnemonic.Fbstp, Mnemonic.Fld1, Mnemonic.Fldl2t, Mnemonic.Fldl2e,
            Mnemonic.Fldpi, Mnemonic.Fldlg2, Mnemonic.Fldln2, Mnemonic.Fldz, Mnemonic.Fxch, Mnemonic.Ffree,
            Mnemonic.Ffreep, Mnemonic.Fincstp, Mnemonic.Fdecstp, Mnemonic.Fcmovb, Mnemonic.Fcmove, Mnemonic.Fcmovbe,
            Mnemonic.Fcmovu, Mnemonic.Fcmovnb, Mnemonic.Fcmovne, Mnemonic.Fcmovnbe, Mnemonic.Fcmovnu, Mnemonic.Fchs, Mnemonic.Fabs,
        ]),
        ("X87Compare", 15,
        [
            Mnemonic.Fcom, Mnemonic.Fcomp, Mnemonic.Fcompp, Mnemonic.Fucom, Mnemonic.Fucomp, Mnemonic.Fucompp,
            Mnemonic.Ficom, Mnemonic.Ficomp, Mnemonic.Fcomi, Mnemonic.Fcomip, Mnemonic.Fucomi, Mnemonic.Fucomip,
            Mnemonic.Ftst, Mnemonic.Fxam, Mnemonic.Fnstsw,
        ]),
        ("X87Misc", 20,
        [
            Mnemonic.Fsqrt, Mnemonic.Frndint, Mnemonic.Fscale, Mnemonic.Fxtract, Mnemonic.Fprem, Mnemonic.Fprem1,
        ]),
        ("X87Transcendental", 5, X87TranscendentalCases.Mnemonics),
        ("X87Control", 5,
        [
            Mnemonic.Fnstenv, Mnemonic.Fldenv, Mnemonic.Fnsave, Mnemonic.Frstor, Mnemonic.Fldcw, Mnemonic.Fnstcw,
            Mnemonic.Fnclex, Mnemonic.Fninit, Mnemonic.Fnop,
        ]),
    ];

    static int TotalWeight => X87Groups.Sum(g => g.Weight);

    public static GroupResult RunX87(string name, ulong runSeed = FpuDiff.BaseSeed, int? total = null, ulong? caseSeed = null)
    {
        var g = X87Groups.Single(x => x.Name == name);
        var codes = X87Cases.CodesFor(g.Mnemonics);
        int n = Math.Max(1, (int)((long)(total ?? FpuDiff.TotalCases) * g.Weight / (TotalWeight + SseWeight)));
        Action<Rng, FpCase>? adjust = name == "X87Transcendental" ? X87TranscendentalCases.Adjust : null;
        return FpuDiff.RunGroup(name, seed => X87Cases.Generate(name, codes, seed, adjust), n, runSeed, caseSeed);
    }

    void Check(GroupResult r) => DifferentialTests.Check(output, r);

    [DifferentialFact] public void X87Arith() => Check(RunX87(nameof(X87Arith)));
    [DifferentialFact] public void X87LoadStore() => Check(RunX87(nameof(X87LoadStore)));
    [DifferentialFact] public void X87Compare() => Check(RunX87(nameof(X87Compare)));
    [DifferentialFact] public void X87Misc() => Check(RunX87(nameof(X87Misc)));

    /// <summary>A random run's failure on an Intel host, kept: FSCALE of a denormal by 0 with UE unmasked leaves it as it
    /// is, with no UE (a vendor quirk: AMD underflows).</summary>
    [DifferentialFact] public void Fscale_of_a_denormal_by_zero() => Check(RunX87(nameof(X87Misc), caseSeed: 0x3d3c9313431a8eb));

    /// <summary>... but by a denormal ST(1), which also truncates to 0, it underflows (seeds from the same Intel host).</summary>
    [DifferentialTheory]
    [InlineData(0xa07f2d9bc16a5edcUL)]
    [InlineData(0x231ee6abc071b45dUL)]
    public void Fscale_of_a_denormal_by_a_denormal(ulong seed) => Check(RunX87(nameof(X87Misc), caseSeed: seed));
    [DifferentialFact] public void X87Control() => Check(RunX87(nameof(X87Control)));

    /// <summary>Share of DYNASMP_FP_CASES given to the SSE floating-point group (the x87 groups share the rest).</summary>
    const int SseWeight = 30;

    public static GroupResult RunSse(ulong runSeed = FpuDiff.BaseSeed, int? total = null)
    {
        var codes = SseFloatCases.Codes();
        int n = Math.Max(1, (int)((long)(total ?? FpuDiff.TotalCases) * SseWeight / (TotalWeight + SseWeight)));
        return FpuDiff.RunGroup("SseFloat", seed => SseFloatCases.Generate("SseFloat", codes, seed), n, runSeed);
    }

    [DifferentialFact] public void SseFloat() => Check(RunSse());

    /// <summary>Tier 1's SSE lowering (InstEmit.SseFloat.cs, SseFastPath) against the host and tier 0: every case runs in
    /// both tiers, most of them inside the fast path's domain (round to nearest, PE set, ordinary operands), the rest with
    /// NaN, denormal and infinite operands, directed rounding, FTZ/DAZ or PE clear, which must fall back exactly.
    /// DYNASMP_SSE_TIER1_CASES cases (default 6000).</summary>
    public static GroupResult RunSseTier1(ulong runSeed = FpuDiff.BaseSeed, int? total = null)
    {
        var codes = SseFloatCases.Codes([.. SseFloatCases.Mnemonics, .. SseFloatCases.Tier1Extra]);
        int n = total ?? (int.TryParse(Environment.GetEnvironmentVariable("DYNASMP_SSE_TIER1_CASES"), out int v) ? v : 6000);
        return FpuDiff.RunGroup("SseTier1", seed => SseFloatCases.Generate("SseTier1", codes, seed, fastBias: true), n, runSeed, compiledEvery: 1);
    }

    [DifferentialFact] public void SseTier1() => Check(RunSseTier1());

    /// <summary>SSE3/SSE4.1 floating point (<see cref="Sse4FloatCases"/>): DYNASMP_SSE4_FP_CASES cases (default 8000),
    /// outside the x87/SSE2 budget of DYNASMP_FP_CASES so those groups keep their cases.</summary>
    public static GroupResult RunSse4Float(ulong runSeed = FpuDiff.BaseSeed, int? total = null)
    {
        var codes = SseFloatCases.Codes(Sse4FloatCases.Mnemonics);
        int n = total ?? (int.TryParse(Environment.GetEnvironmentVariable("DYNASMP_SSE4_FP_CASES"), out int v) ? v : 8000);
        return FpuDiff.RunGroup("Sse4Float", seed => Sse4FloatCases.Generate("Sse4Float", codes, seed), n, runSeed);
    }

    [DifferentialFact] public void Sse4Float() => Check(RunSse4Float());
    [DifferentialFact] public void X87Transcendental() => Check(RunX87(nameof(X87Transcendental)));

    /// <summary>A random run's failure, kept: FYL2X of a denormal y by x = 2 is exact and tiny, yet AMD and Intel silicon
    /// both raise PE and UE with it (the SDM says #P only when inexact); DynaSmp follows the silicon.</summary>
    [DifferentialFact] public void Fyl2x_exact_tiny_result_raises_PE_and_UE_as_silicon_does() => Check(RunX87(nameof(X87Transcendental), caseSeed: 0x4b1af00d1e25258b));

    public static TheoryData<string> X87GroupNames()
    {
        var d = new TheoryData<string>();
        foreach (var g in X87Groups) d.Add(g.Name);
        d.Add("SseFloat");
        d.Add("SseTier1");
        d.Add("Sse4Float");
        return d;
    }

    /// <summary>Random-run cases that once failed on an AMD host: FPATAN of a tiny ratio and FYL2X results taken as
    /// exact (PE), FYL2X by zero with a denormal y (ZE over DE) or a normal one (no PE), FYL2X's PE on exact results (silicon of both vendors), FYL2X of x
    /// just above 1 (log near 1), and FSINCOS/FSIN arguments near a multiple of pi/2 (the 66-bit pi bound is absolute there).</summary>
    [DifferentialTheory]
    [InlineData(0x2357244495049e9dUL)]
    [InlineData(0x88ded44b7f80a3bfUL)]
    [InlineData(0x93549f4f40239606UL)]
    [InlineData(0x611817a0d0f1570fUL)]
    [InlineData(0xf5d4d74cda7c4064UL)]
    [InlineData(0x91bc0ff773d89802UL)]
    [InlineData(0xc490b97e636603d6UL)]
    [InlineData(0xd18573e10414ea1eUL)]
    [InlineData(0x250c8016a4c841deUL)]
    [InlineData(0x9943c8e39bc2af5aUL)]
    public void Transcendental_regressions(ulong seed) => Check(RunX87("X87Transcendental", caseSeed: seed));

    /// <summary>DYNASMP_FP_RANDOM_CASES (default 10000) cases over the x87 groups from the run seed (DYNASMP_DIFF_RUN_SEED,
    /// or drawn once per test process and printed): new cases on every run, replayable from the printed seed.</summary>
    [DifferentialTheory]
    [MemberData(nameof(X87GroupNames))]
    public void Random_run(string group)
    {
        int total = int.TryParse(Environment.GetEnvironmentVariable("DYNASMP_FP_RANDOM_CASES"), out int n) ? n : 10_000;
        Check(group switch
        {
            "SseFloat" => RunSse(DiffHarness.RunSeed, total),
            "SseTier1" => RunSseTier1(DiffHarness.RunSeed, Math.Max(1, total / 5)), // every case also compiles a block
            "Sse4Float" => RunSse4Float(DiffHarness.RunSeed, Math.Max(1, total / 2)),
            _ => RunX87(group, DiffHarness.RunSeed, total),
        });
    }
}
