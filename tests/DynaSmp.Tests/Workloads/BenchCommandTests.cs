using System.Diagnostics;
using System.Text.Json;

namespace DynaSmp.Tests.Workloads;

/// <summary>`dynasmp bench` as a user runs it: bad input is one line and status 2; a tiny DynaSmp-only run writes its JSON.</summary>
public class BenchCommandTests
{
    static readonly string Dll = typeof(DynaSmp.Cli.CliOptions).Assembly.Location;

    static (int Code, string Out, string Err) Bench(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        psi.ArgumentList.Add("bench");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("dynasmp bench did not finish in 120 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Theory]
    [InlineData("unknown workload 'nosuch'", "--filter", "nosuch")]
    [InlineData("--mode must be one of", "--mode", "16")]
    [InlineData("--runs must be an integer", "--runs", "0")]
    [InlineData("Unrecognized command or argument '--bogus'", "--bogus", "1")]
    public void Bad_input_is_one_line_and_status_2(string message, params string[] args)
    {
        var (code, output, err) = Bench(args);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void A_DynaSmp_only_run_reports_that_QEMU_was_not_run()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-bench-{Guid.NewGuid():N}.json");
        var (code, output, err) = Bench("--filter", "crc32", "--mode", "64", "--runs", "1", "--no-qemu", "--json", json);
        Assert.True(code == 0, output + err);
        Assert.Contains("| crc32    |   64 |", output);
        Assert.Contains("QEMU not run (--no-qemu)", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var row = doc.RootElement.GetProperty("rows").EnumerateArray().Single();
        Assert.Equal("crc32", row.GetProperty("workload").GetString());
        Assert.Equal(row.GetProperty("expected").GetString(), row.GetProperty("dynasmp").GetProperty("checksum").GetString());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("qemu").ValueKind);
        File.Delete(json);
    }

    /// <summary>--native builds the workload's C source for the host and times it: its checksum must be the manifest's,
    /// the same the guest prints. Without a compiler the run still succeeds and says why there is no native time.</summary>
    [Fact]
    public void Native_runs_the_host_build_of_the_same_source_or_says_why_not()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-bench-{Guid.NewGuid():N}.json");
        var (code, output, err) = Bench("--filter", "crc32,smp", "--mode", "64", "--runs", "1", "--no-qemu", "--native", "--json", json);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("workload").GetString()!);
        if (DynaSmp.Cli.Commands.NativeWorkloads.FindCompiler() == null)
        {
            Assert.Contains("native: no C compiler", output);
        }
        else
        {
            var crc = rows["crc32"];
            var native = crc.GetProperty("native");
            Assert.Equal(crc.GetProperty("expected").GetString(), native.GetProperty("checksum").GetString());
            Assert.True(native.GetProperty("median_work_s").GetDouble() > 0);
            Assert.Equal(JsonValueKind.Null, crc.GetProperty("ceiling_vs_qemu").ValueKind); // no QEMU time to divide
            Assert.Contains("| native s | ceiling |", output);
            // smp's host build would check a total two CPUs make: it is left out, and said so.
            Assert.Equal(0, rows["smp"].GetProperty("native").GetProperty("work_s").GetArrayLength());
            Assert.Contains("native: smp not timed", output);
        }
        File.Delete(json);
    }

    [Fact]
    public void Native_with_only_32_bit_rows_says_there_is_nothing_to_show()
    {
        var (code, output, err) = Bench("--filter", "crc32", "--mode", "32", "--runs", "1", "--no-qemu", "--native");
        Assert.True(code == 0, output + err);
        Assert.Contains("native: host builds are x86-64 and shown on 64-bit rows; --mode 32 has none", output);
        Assert.DoesNotContain("native s", output);
    }
}
