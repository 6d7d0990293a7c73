using Iced.Intel;
using DynaSmp.Jit.Cpu;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// The random run: every group with a seed drawn per test process (or DYNASMP_DIFF_RUN_SEED), so each CI run covers new
/// cases. It may fail only on a real difference: undefined results are masked and vendor quirks relaxed as in the fixed run.
/// </summary>
[Collection("Differential")]
public sealed class DifferentialRandomTests(ITestOutputHelper output)
{
    public static TheoryData<string> GroupNames()
    {
        var d = new TheoryData<string>();
        foreach (var g in Groups.All) d.Add(g.Name);
        return d;
    }

    [DifferentialTheory]
    [MemberData(nameof(GroupNames))]
    public void Random_run(string group) =>
        DifferentialTests.Check(output, DiffHarness.RunGroup(group, DiffHarness.RunSeed, DiffHarness.RandomTotalCases));
}

/// <summary>The harness compares what the architecture defines, and what both vendors define alike, on any x86-64 host.</summary>
[Collection("Differential")]
public sealed class HostIndependenceTests(ITestOutputHelper output)
{
    static readonly RflagsBits OF = RflagsBits.OF;

    [Theory]
    [InlineData(Mnemonic.Rcl, 16, 17)] // rcl r/m16, 17: masked count 17, rotates by 0, OF undefined
    [InlineData(Mnemonic.Rcr, 8, 9)]
    [InlineData(Mnemonic.Rol, 8, 8)]
    [InlineData(Mnemonic.Shl, 32, 2)]
    [InlineData(Mnemonic.Shrd, 64, 5)]
    public void OF_is_undefined_when_the_masked_count_is_not_one(Mnemonic m, int bits, int count)
    {
        Assert.Equal(OF, UndefinedResults.Shift(m, bits, count).Undefined & OF);
        Assert.Equal(RflagsBits.None, UndefinedResults.Shift(m, bits, 1).Undefined & OF);
        Assert.Equal((RflagsBits.None, RflagsBits.None, false), UndefinedResults.Shift(m, bits, 0)); // count 0 changes nothing
    }

    [Fact]
    public void Counts_are_masked_before_deciding()
    {
        var rcr = Instruction.Create(Code.Rcr_rm16_imm8, Register.R14W, 0xD1);
        Assert.Equal(0x11, UndefinedResults.MaskedCount(rcr, 0));           // 0xD1 & 0x1F
        var rclCl = Instruction.Create(Code.Rcl_rm8_CL, Register.DH, Register.CL);
        Assert.Equal(1, UndefinedResults.MaskedCount(rclCl, 0x21));          // CL = 0x21 masks to 1: OF defined
        var shl64 = Instruction.Create(Code.Shl_rm64_imm8, Register.RAX, 0x21);
        Assert.Equal(0x21, UndefinedResults.MaskedCount(shl64, 0));          // 64-bit operands keep 6 bits
        Assert.Equal(RflagsBits.CF, UndefinedResults.Shift(Mnemonic.Shr, 8, 8).Undefined & RflagsBits.CF);
        Assert.Equal(RflagsBits.None, UndefinedResults.Shift(Mnemonic.Sar, 8, 8).Undefined & RflagsBits.CF);
        var (u, _, dest) = UndefinedResults.Shift(Mnemonic.Shld, 16, 20);
        Assert.True(dest);
        Assert.Equal(RflagsBits.CF, u & RflagsBits.CF);
    }

    /// <summary>The cases that failed on an AMD EPYC host before per-case masking and the vendor list (issue 10), rerun.</summary>
    [DifferentialTheory]
    [InlineData("StringOps", 0xc83911e78d040ba9)]
    [InlineData("StringOps", 0x541da879bacd6568)]
    [InlineData("StringOps", 0x95d4f31ffbccb6a6)]
    [InlineData("StringOps", 0xe90ec31e265dc4fc)]
    [InlineData("StringOps", 0x47abbdc1ef5339df)]
    [InlineData("ShiftRotate", 0x22572dd45bcf1650)]
    [InlineData("ShiftRotate", 0x36028a3119e04335)]
    [InlineData("ShiftRotate", 0x3082ed8c02756adb)]
    [InlineData("ShiftRotate", 0xdfb7b852c9a7f3bf)]
    [InlineData("ShiftRotate", 0xab8b187af6997904)]
    [InlineData("FlagSequences", 0x8bb73b236268f038)]
    [InlineData("FlagSequences", 0xa65a85a59c8c78f6)]
    [InlineData("FlagSequences", 0x663d8718c4bbb17b)]
    [InlineData("FlagSequences", 0xfac223b784d6f49b)]
    [InlineData("FlagSequences", 0xe27463c78c17e118)]
    public void Formerly_failing_cases_compare_what_is_defined(string group, ulong seed)
    {
        var c = DiffHarness.Generate(Groups.Get(group), seed);
        var f = new Formatter();
        output.WriteLine($"{HostCpu.Description}\n{group} 0x{seed:x}: {f.Show(c)}; compared flags 0x{c.Mask.Flags:x}");
        if (group == "ShiftRotate")
        {
            // Every one is an RCL/RCR of an 8/16-bit operand whose masked count is not 1: OF is not compared.
            Assert.True(c.Insn.Mnemonic is Mnemonic.Rcl or Mnemonic.Rcr, c.Insn.ToString());
            Assert.Equal(0UL, c.Mask.Flags & RFlags.OF);
        }
        var quirk = group == "StringOps" ? VendorQuirks.All[0] : null;
        if (quirk != null) Assert.True(quirk.Applies(c), "the a32 REP count-0 quirk should apply to " + c.Insn);
        lock (NativeRunner.Lock)
        {
            using var ram = DiffHarness.NewRam();
            var (diff, tier, relaxed) = DiffHarness.RunCase(c, ram);
            output.WriteLine($"  {tier}: {(diff == null ? "agrees" : diff)}; relaxed: {relaxed?.Name ?? "nothing"}");
            Assert.Null(diff);
            Assert.Equal(HostCpu.IsIntel ? null : quirk, relaxed);
        }
    }

    /// <summary>Each vendor-list entry holds on this host: its probe gives the column of the host's vendor natively, and
    /// the Intel column in DynaSmp (both tiers), whatever the host.</summary>
    [DifferentialFact]
    public void Vendor_quirks_hold_natively_and_DynaSmp_follows_Intel()
    {
        output.WriteLine(HostCpu.Description);
        bool amdLike = HostCpu.Vendor is "AuthenticAMD" or "HygonGenuine";
        foreach (var q in VendorQuirks.All)
        {
            var input = q.ProbeInput();
            var insn = Decoder.Create(64, q.Probe, NativeRunner.TestRip).Decode();
            var c = new DiffCase
            {
                Group = "VendorQuirk", Seed = 0, Code = q.Probe, Insn = insn, Input = input,
                Buffer = new byte[NativeRunner.BufferSize], Stack = new byte[NativeRunner.StackBelow + NativeRunner.StackAbove],
                Mask = new CompareMask { Flags = RFlags.Status | RFlags.DF },
            };
            Assert.True(q.Applies(c), q.Name + ": the probe must be a case the entry applies to");
            lock (NativeRunner.Lock)
            {
                var native = DiffHarness.RunNative(c);
                if (HostCpu.IsIntel || amdLike)
                {
                    var expected = q.ProbeResult(HostCpu.IsIntel, input);
                    Assert.Equal(expected.Gpr, native.State.Gpr);
                    output.WriteLine($"{q.Name}: host shows the {(HostCpu.IsIntel ? "Intel" : "AMD")} column");
                }
                else output.WriteLine($"{q.Name}: host vendor {HostCpu.Vendor} is neither Intel nor AMD; native side not checked");
                var intel = new DiffHarness.NativeResult { State = q.ProbeResult(true, input), Buffer = native.Buffer, Stack = native.Stack };
                intel.State.Rflags = native.State.Rflags;
                using var ram = DiffHarness.NewRam();
                Assert.Null(DiffHarness.RunAndCompare(c, intel, ram, compiled: false));
                Assert.Null(DiffHarness.RunAndCompare(c, intel, ram, compiled: true));
            }
        }
    }

    /// <summary>Relaxing a vendor quirk drops only the disputed bits: a wrong low half is still a failure.</summary>
    [DifferentialFact]
    public void A_relaxed_case_still_fails_on_a_real_difference()
    {
        var q = VendorQuirks.All[0];
        var c = DiffHarness.Generate(Groups.Get("StringOps"), 0xc83911e78d040ba9);
        Assert.True(q.Applies(c));
        var mask = c.Mask.Clone();
        q.CompareOnlyAgreed(c, mask);
        lock (NativeRunner.Lock)
        {
            var native = DiffHarness.RunNative(c);
            native.State.Gpr[6] ^= 0x4; // RSI low half
            using var ram = DiffHarness.NewRam();
            string? diff = DiffHarness.RunAndCompare(c, native, ram, compiled: false, mask);
            Assert.NotNull(diff);
            Assert.Contains("rsi", diff);
        }
    }

    sealed class Formatter
    {
        readonly NasmFormatter _f = new();
        readonly StringOutput _o = new();
        public string Show(DiffCase c) { _f.Format(c.Insn, _o); return _o.ToStringAndReset() + " " + System.Convert.ToHexString(c.Code); }
    }
}
