using System.Text.Json;
using DynaSmp.Tests.Hostile;

namespace DynaSmp.Tests.Boot;

/// <summary>`run`, `bench` and `boot --kernel` run without the runtime's W^X, with no tiering delay and a call-count
/// threshold of 8,192 (the CLI starts itself again through execve), keep their exact arguments and exit status in doing
/// so, and leave a setting alone when the user made it; the built-in guest's short `boot` does not restart.</summary>
[Collection(DynasmpProcess.Collection)]
public class RuntimeSettingsTests
{
    const string Variable = "DOTNET_EnableWriteXorExecute", Delay = "DOTNET_TC_CallCountingDelayMs", Align = "DOTNET_JitAlignLoopMinBlockWeight",
        Gen0 = "DOTNET_GCgen0size", Threshold = "DOTNET_TC_CallCountThreshold";

    /// <summary>Every name the runtime reads the settings under: DOTNET_X and the legacy COMPlus_X.</summary>
    static readonly string[] Unset = [.. new[] { Variable, Delay, Align, Gen0, Threshold }.SelectMany(v => new[] { v, "COMPlus_" + v["DOTNET_".Length..] })];
    static readonly string[] Legacy = [.. Unset.Where(v => v.StartsWith("COMPlus_", StringComparison.Ordinal))];

    /// <summary>The five runtime settings the stats file's host section reports.</summary>
    static void AssertSettings(JsonElement host, bool writeXorExecute, int delayMs, bool alignEveryLoop, long gen0Mib, int callCountThreshold)
    {
        Assert.Equal(callCountThreshold, host.GetProperty("call_count_threshold").GetInt32());
        Assert.Equal(writeXorExecute, host.GetProperty("write_xor_execute").GetBoolean());
        Assert.Equal(delayMs, host.GetProperty("call_counting_delay_ms").GetInt32());
        Assert.Equal(alignEveryLoop, host.GetProperty("align_every_loop").GetBoolean());
        Assert.Equal(gen0Mib, host.GetProperty("gc_gen0_size_mib").GetInt64());
    }

    /// <summary>`run` of the exported built-in guest (a multiboot image); the stats file's host section.</summary>
    static JsonElement RunHost(DynasmpProcess.TempDir dir, IDictionary<string, string>? env, string[] unset)
    {
        string image = dir.File("guest.elf");
        Assert.Equal(0, DynasmpProcess.Run(["guest", "export", image]).Code);
        // A space and a non-ASCII letter in the path: the restarted process must get the arguments byte for byte.
        string stats = dir.File("st ats é.json");
        var r = DynasmpProcess.Run(["run", image, "--smp", "2", "--stats", stats], env, unset: unset);
        Assert.True(r.Code == 1, r.Out + r.Err); // the built-in guest's isa-debug-exit: every CPU online
        return JsonDocument.Parse(File.ReadAllText(stats)).RootElement.GetProperty("host").Clone();
    }

    [Fact]
    public void Run_goes_without_write_xor_execute_and_tiering_delay_when_the_user_did_not_choose()
    {
        using var dir = new DynasmpProcess.TempDir();
        var host = RunHost(dir, null, Unset);
        // Only Linux restarts (execve); elsewhere the runtime's defaults stay.
        bool linux = OperatingSystem.IsLinux();
        AssertSettings(host, writeXorExecute: !linux, delayMs: linux ? 0 : 100, alignEveryLoop: linux, gen0Mib: linux ? 128 : 0,
            callCountThreshold: linux ? 8192 : 30);
        Assert.Equal(3, host.GetProperty("gc_collections").GetArrayLength());
        Assert.True(host.GetProperty("gc_collections")[2].GetInt32() >= 1); // the collection before the vCPUs start
        Assert.True(host.GetProperty("gc_pause_ms").GetDouble() > 0);
        Assert.False(host.GetProperty("guest_ram_huge_pages").GetBoolean()); // a multiboot guest: ordinary pages
    }

    [Fact]
    public void A_user_who_sets_one_variable_keeps_it_and_gets_the_other()
    {
        using var dir = new DynasmpProcess.TempDir();
        var host = RunHost(dir, new Dictionary<string, string> { [Variable] = "1" }, [.. Unset.Where(v => v != Variable)]);
        Assert.True(host.GetProperty("write_xor_execute").GetBoolean());
        Assert.Equal(OperatingSystem.IsLinux() ? 0 : 100, host.GetProperty("call_counting_delay_ms").GetInt32());
    }

    [Fact]
    public void A_user_who_sets_every_variable_keeps_them_all()
    {
        using var dir = new DynasmpProcess.TempDir();
        // The runtime reads the delay as hexadecimal: 0x20 is 32 ms.
        var host = RunHost(dir, new Dictionary<string, string> { [Variable] = "1", [Delay] = "20", [Align] = "5", [Gen0] = "4000000", [Threshold] = "100" }, Legacy);
        AssertSettings(host, writeXorExecute: true, delayMs: 32, alignEveryLoop: false, gen0Mib: 64, callCountThreshold: 256);
    }

    [Fact]
    public void The_built_in_guests_boot_does_not_restart()
    {
        using var dir = new DynasmpProcess.TempDir();
        string stats = dir.File("stats.json");
        var r = DynasmpProcess.Run(["boot", "--vms", "1", "--cpus", "2", "--stats", stats], unset: Unset);
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.Contains("1 VM x 2 vCPUs", r.Out);
        var host = JsonDocument.Parse(File.ReadAllText(stats)).RootElement.GetProperty("host");
        AssertSettings(host, writeXorExecute: true, delayMs: 100, alignEveryLoop: false, gen0Mib: 0, callCountThreshold: 30);
    }

    [Fact]
    public void A_failing_guest_keeps_its_exit_status_through_the_restart()
    {
        using var dir = new DynasmpProcess.TempDir();
        // Not an image: status 2 (bad input), from the restarted process.
        string junk = dir.Write("junk.bin", new byte[64]);
        var r = DynasmpProcess.Run(["run", junk], unset: Unset);
        Assert.Equal(2, r.Code);
        Assert.Contains("not a bootable", r.Err);
    }
}
