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
}
