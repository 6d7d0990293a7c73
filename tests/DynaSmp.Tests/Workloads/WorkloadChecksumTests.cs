using DynaSmp.Cli;
using DynaSmp.Cli.Commands;
using DynaSmp.Tests.Guests;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Workloads;

/// <summary>
/// Every perf/workloads image prints the right checksum under DynaSmp in 32-bit protected mode and in long mode,
/// run with its small test loop count (passed as n=COUNT on the multiboot command line). The expected values were
/// computed by the host build of the same C source (perf/workloads/build.sh) and checked under QEMU TCG; they are
/// repeated here so a rebuilt manifest cannot silently move them. Timings are `dynasmp bench`'s business, not a test's.
/// </summary>
public class WorkloadChecksumTests(ITestOutputHelper output)
{
    // name, vCPUs, test loop count, checksum for that count (the same in both modes)
    static readonly (string Name, int Vcpus, uint N, string Checksum)[] Expected =
    {
        ("startup", 1, 1, "0x00000001"),
        ("sieve", 1, 1, "0x0000a97e"),
        ("crc32", 1, 2, "0x44b49552"),
        ("calls", 1, 1, "0x00001a72"),
        ("matmul", 1, 1, "0xcfb9241a"),
        ("qsort", 1, 1, "0x0007aa28"),
        ("memops", 1, 4, "0x40a3bc08"),
        ("hash", 1, 2, "0x2f828c9c"),
        ("divide", 1, 2, "0x6194a729"),
        ("chase", 1, 1, "0xeacd6cde"),
        ("smp", 2, 2000, "0x0b9f290b"),
        ("nbody", 1, 200, "0xea3189e4"),
        ("mandel", 1, 1, "0xcb0a2bee"),
        ("ddot", 1, 4, "0xa752d7f8"),
        ("fpprint", 1, 1, "0xa9ba9fd6"),
    };

    public static TheoryData<string, int> Cases()
    {
        var d = new TheoryData<string, int>();
        foreach (var e in Expected) { d.Add(e.Name, 32); d.Add(e.Name, 64); }
        return d;
    }

    static string Dir => WorkloadSuite.FindDirectory()
        ?? throw new Xunit.Sdk.XunitException("perf/workloads/workloads.json not found above the test directory");

    [Fact]
    public void Manifest_lists_the_same_workloads_counts_and_checksums()
    {
        var manifest = WorkloadSuite.ReadManifest(Dir);
        Assert.Equal(Expected.Select(e => e.Name), manifest.Select(w => w.Name));
        foreach (var (w, e) in manifest.Zip(Expected))
        {
            Assert.Equal(e.Vcpus, w.Vcpus);
            Assert.Equal(e.N, w.TestN);
            Assert.Equal(e.Checksum, w.TestExpected);
            Assert.True(w.Name == "startup" || w.N > w.TestN, $"{w.Name}: the bench count {w.N} should exceed the test count {w.TestN}");
            foreach (int bits in new[] { 32, 64 }) Assert.True(File.Exists(w.ImagePath(Dir, bits)), w.ImagePath(Dir, bits));
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Checksum_under_DynaSmp(string name, int bits)
    {
        var e = Expected.Single(x => x.Name == name);
        var image = File.ReadAllBytes(Path.Combine(Dir, "images", $"{name}-{bits}.elf"));
        var run = WorkloadSuite.RunDynaSmp(image, e.Vcpus, $"n={e.N}", TimeSpan.FromSeconds(60));
        output.WriteLine($"{name}-{bits}: {run.Seconds:0.000} s, checksum {run.Checksum}, error {run.Error ?? "none"}");
        Assert.Null(run.Error);
        Assert.Equal(e.Checksum, run.Checksum);
        Assert.True(run.SelfCheckPassed, $"{name}-{bits} printed FAIL (its own check of the result)");
    }

    /// <summary>The guest printf test: fpprint formats doubles with its own printf-style code, digit by digit in SSE2
    /// double and in x87 long double arithmetic, under every MXCSR and x87 rounding mode and precision, with the MXCSR
    /// flags and x87 transcendental results; DynaSmp's serial text must equal QEMU TCG's line for line.</summary>
    [QemuTheory]
    [InlineData(32)]
    [InlineData(64)]
    public void Fpprint_serial_output_equals_QEMU(int bits) => AssertSerialEqualsQemu("fpprint", bits, 90, _ => false);

    /// <summary>The sse4 self-test guest's checksum under DynaSmp, computed with n=1 by the host reference build of
    /// perf/workloads/src/sse4.c running natively on an SSE4.2 host (perf/workloads/build.sh prints it). It folds every
    /// printed result and the full MXCSR flags, DE included.</summary>
    const string Sse4HostChecksum = "0x5db96ad8";

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    public void Sse4_guest_checksum_equals_the_native_host_reference(int bits)
    {
        var run = WorkloadSuite.RunDynaSmp(File.ReadAllBytes(Path.Combine(Dir, "images", $"sse4-{bits}.elf")), 1, "n=1", TimeSpan.FromSeconds(60));
        Assert.Null(run.Error);
        Assert.Equal(Sse4HostChecksum, run.Checksum);
    }

    /// <summary>The sse4 guest (packed string compares under all 128 imm8 values, CRC32, ROUNDxx, DPPS/DPPD, the SSE3
    /// horizontal ops, SSE4.1 integer ops, FISTTP, gcc-vectorised loops) prints the same text under DynaSmp as under QEMU
    /// TCG -cpu max. The final checksum line is left out: it includes MXCSR.DE, which QEMU does not raise for SSE.</summary>
    [QemuTheory]
    [InlineData(32)]
    [InlineData(64)]
    public void Sse4_guest_serial_output_equals_QEMU(int bits) =>
        AssertSerialEqualsQemu("sse4", bits, 700, l => l.StartsWith("workload sse4 mode=", StringComparison.Ordinal));

    void AssertSerialEqualsQemu(string name, int bits, int minLines, Func<string, bool> skip)
    {
        var qemu = QemuReference.Find() ?? throw new Xunit.Sdk.XunitException($"{QemuReference.Binary} is not on PATH");
        string path = Path.Combine(Dir, "images", $"{name}-{bits}.elf");
        var q = WorkloadSuite.RunQemu(qemu, path, 1, "n=1", TimeSpan.FromSeconds(60));
        var d = WorkloadSuite.RunDynaSmp(File.ReadAllBytes(path), 1, "n=1", TimeSpan.FromSeconds(60));
        Assert.Null(q.Error);
        Assert.Null(d.Error);
        string[] ql = q.Serial.Split('\n').Where(l => !skip(l)).ToArray(), dl = d.Serial.Split('\n').Where(l => !skip(l)).ToArray();
        Assert.True(ql.Length > minLines, $"QEMU printed only {ql.Length} lines");
        for (int k = 0; k < Math.Max(ql.Length, dl.Length); k++)
            Assert.True(k < ql.Length && k < dl.Length && ql[k] == dl[k],
                $"line {k + 1}: QEMU '{(k < ql.Length ? ql[k] : "<none>")}', DynaSmp '{(k < dl.Length ? dl[k] : "<none>")}'");
        output.WriteLine($"{name}-{bits}: {ql.Length} lines identical");
    }

    [QemuTheory]
    [MemberData(nameof(Cases))]
    public void QEMU_prints_the_same_checksum(string name, int bits)
    {
        var e = Expected.Single(x => x.Name == name);
        var qemu = QemuReference.Find() ?? throw new Xunit.Sdk.XunitException($"{QemuReference.Binary} is not on PATH");
        var run = WorkloadSuite.RunQemu(qemu, Path.Combine(Dir, "images", $"{name}-{bits}.elf"), e.Vcpus, $"n={e.N}", TimeSpan.FromSeconds(60));
        Assert.Null(run.Error);
        Assert.Equal(e.Checksum, run.Checksum);
        Assert.True(run.SelfCheckPassed);
    }
}
