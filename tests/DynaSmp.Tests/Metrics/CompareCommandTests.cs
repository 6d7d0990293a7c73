using DynaSmp.Tests.Hostile;

namespace DynaSmp.Tests.Metrics;

/// <summary>`dynasmp compare` on crafted result files: exact counts, the threshold, host sections, structure changes,
/// and bad input, through the command as a user runs it.</summary>
[Collection(DynasmpProcess.Collection)]
public class CompareCommandTests : IDisposable
{
    readonly DynasmpProcess.TempDir _dir = new();

    string File(string name, string json) => _dir.Write(name, System.Text.Encoding.UTF8.GetBytes(json));

    const string Base = """
        {"schema":"dynasmp-stats/1","vms":[{"exit_kind":"DebugExit","retired":1000,"vcpus":[{"id":0,"halts":3,"host":{"bringup_us":12.5}}]}],"host":{"wall_s":0.5}}
        """;

    DynasmpProcess.Result Compare(string newJson, params string[] extra) =>
        DynasmpProcess.Run(["compare", File("base.json", Base), File("new.json", newJson), .. extra]);

    [Fact]
    public void Equal_files_pass_even_when_host_times_differ()
    {
        var r = Compare(Base.Replace("12.5", "99.0").Replace("0.5", "7.25"));
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Contains("0 regressed or changed", r.Out);
    }

    [Fact]
    public void A_count_one_higher_is_a_regression()
    {
        var r = Compare(Base.Replace("1000", "1001"));
        Assert.Equal(12, r.Code);
        Assert.Matches(@"vms\[0\]\.retired\s+1000\s+1001\s+\+0\.1%\s+REGRESSED", r.Out);
    }

    [Fact]
    public void The_threshold_lets_small_moves_through_and_not_large_ones()
    {
        Assert.Equal(0, Compare(Base.Replace("1000", "1030"), "--threshold", "5").Code);
        Assert.Equal(12, Compare(Base.Replace("1000", "1060"), "--threshold", "5").Code);
    }

    [Fact]
    public void A_count_going_down_is_reported_but_passes()
    {
        var r = Compare(Base.Replace("\"halts\":3", "\"halts\":2"));
        Assert.Equal(0, r.Code);
        Assert.Matches(@"halts\s+3\s+2\s+-33\.3%\s+down", r.Out);
    }

    [Fact]
    public void A_changed_text_or_a_missing_metric_is_a_regression()
    {
        Assert.Equal(12, Compare(Base.Replace("DebugExit", "TripleFault")).Code);
        var r = Compare(Base.Replace("\"halts\":3,", ""));
        Assert.Equal(12, r.Code);
        Assert.Contains("MISSING in new", r.Out);
    }

    [Fact]
    public void Bad_input_is_a_clear_error()
    {
        var r = Compare("{not json");
        Assert.Equal(2, r.Code);
        Assert.Contains("not a JSON result file", r.Err);
        Assert.Equal(2, Compare(Base.Replace("dynasmp-stats/1", "dynasmp-gate/1")).Code);
        Assert.Equal(2, Compare(Base, "--threshold", "-3").Code);
        Assert.Equal(2, DynasmpProcess.Run("compare", File("only.json", Base)).Code);
        Assert.Equal(2, DynasmpProcess.Run("compare", _dir.File("missing.json"), File("b.json", Base)).Code);
    }

    [Fact]
    public void Deterministic_boot_stats_compare_equal_and_run_takes_the_same_flags()
    {
        string a = _dir.File("a.json"), b = _dir.File("b.json");
        Assert.Equal(0, DynasmpProcess.Run("boot", "--cpus", "3", "--deterministic", "--seed", "4", "--stats", a).Code);
        Assert.Equal(0, DynasmpProcess.Run("boot", "--cpus", "3", "--deterministic", "--seed", "4", "--stats", b).Code);
        var r = DynasmpProcess.Run("compare", a, b);
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Contains("0 regressed or changed", r.Out);

        string image = _dir.File("guest.elf"), c = _dir.File("c.json");
        Assert.Equal(0, DynasmpProcess.Run("guest", "export", image).Code);
        Assert.Equal(1, DynasmpProcess.Run("run", image, "--smp", "3", "--deterministic", "--stats", c).Code);
        using var doc = System.Text.Json.JsonDocument.Parse(System.IO.File.ReadAllText(c));
        Assert.Equal("run", doc.RootElement.GetProperty("command").GetString());
        Assert.Equal(3, doc.RootElement.GetProperty("vms")[0].GetProperty("vcpus").GetArrayLength());

        var bad = DynasmpProcess.Run("boot", "--seed", "4");
        Assert.Equal(2, bad.Code);
        Assert.Contains("--seed needs --deterministic", bad.Err);
        Assert.Equal(2, DynasmpProcess.Run("boot", "--deterministic=1").Code);
    }

    public void Dispose() => _dir.Dispose();
}
