using System.Text.Json;
using DynaSmp.Cli;
using DynaSmp.Cli.Fuzz;
using static DynaSmp.Tests.Hostile.DynasmpProcess;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 4: what the host cannot hold is refused up front, saying what would fit; guest RAM is lazy.</summary>
[Collection(DynasmpProcess.Collection)]
public class AdmissionTests
{
    [Fact]
    public void A_quarter_million_vcpus_are_refused_up_front() // used to grow to 9.6 GB and run past its deadline
    {
        var r = Run(["boot", "--vms", "1024", "--cpus", "255", "--timeout", "10"], limitSeconds: 30);
        Assert.True(r.Code == (int)ExitStatus.HostResources || r.Code == 124, $"{r.Code}: {r.Err}");
        if (r.Code == (int)ExitStatus.HostResources) Assert.Contains("What would fit: --vms", r.Err);
        Assert.True(r.Seconds < 15, $"{r.Seconds:F1} s");
    }

    [Fact]
    public void A_small_host_refuses_what_it_cannot_hold_and_says_what_fits()
    {
        var r = Run(["boot", "--vms", "64", "--cpus", "64"], new Dictionary<string, string> { [Admission.AssumeMemoryVariable] = "256M" });
        Assert.True(r.Code == (int)ExitStatus.HostResources, $"{r.Code}: {r.Err}");
        Assert.Contains("refused:", r.Err);
        Assert.Contains("What would fit", r.Err);
    }

    [Fact]
    public void Four_gigabytes_of_guest_RAM_cost_only_what_the_guest_touches()
    {
        using var d = new TempDir();
        string json = d.File("r.json");
        var r = Run(["run", d.Write("g.elf", GuestImages.DebugExit(0)), "--mem", "4000M", "--json", json],
            new Dictionary<string, string> { [Admission.AssumeMemoryVariable] = "1G" });
        Assert.True(r.Code == 1, $"{r.Code}: {r.Err}");
        Assert.Contains("allocated only where the guest touches it", r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.True(doc.RootElement.GetProperty("peak_resident_bytes").GetInt64() < 400L << 20);
    }
}
