using System.Text.Json;
using DynaSmp.Cli;
using DynaSmp.Cli.Fuzz;
using static DynaSmp.Tests.Hostile.DynasmpProcess;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 2: statuses a script can tell apart. isa-debug-exit is odd ((value &lt;&lt; 1) | 1, as QEMU); every
/// other outcome is a distinct even status from <see cref="ExitStatus"/>.</summary>
[Collection(DynasmpProcess.Collection)]
public class ExitStatusTests
{
    [Fact]
    public void Every_non_guest_status_is_even_and_distinct()
    {
        var values = Enum.GetValues<ExitStatus>().Select(v => (int)v).ToList();
        Assert.All(values, v => Assert.True(v % 2 == 0 && v is >= 0 and < 256, $"{v}"));
        Assert.Equal(values.Count, values.Distinct().Count());
        for (uint value = 0; value < 256; value++) Assert.DoesNotContain((int)(((value << 1) | 1) & 0xFF), values);
        Assert.Equal(124, (int)ExitStatus.Timeout);
        Assert.Equal(2, (int)ExitStatus.BadInput);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(5, 11)]
    [InlineData(127, 255)]
    public void Isa_debug_exit_keeps_QEMUs_status(byte value, int status)
    {
        using var d = new TempDir();
        var r = Run("run", d.Write("g.elf", GuestImages.DebugExit(value)), "--timeout", "20");
        Assert.True(r.Code == status, $"{r.Code}: {r.Err}");
    }

    [Fact]
    public void A_triple_fault_is_4_and_says_so()
    {
        using var d = new TempDir();
        string json = d.File("r.json");
        var r = Run("run", d.Write("g.elf", GuestImages.TripleFault()), "--timeout", "20", "--json", json);
        Assert.True(r.Code == (int)ExitStatus.GuestShutdown, $"{r.Code}: {r.Err}");
        Assert.Contains("triple", r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal("guest_shutdown", doc.RootElement.GetProperty("status_name").GetString());
        // Item 5: the dying vCPU's diagnosis, on stderr and in the JSON.
        var d5 = doc.RootElement.GetProperty("diagnosis");
        Assert.Equal("ud2", d5.GetProperty("disassembly").GetString());
        Assert.Equal("0f0b", d5.GetProperty("instruction_bytes").GetString());
        Assert.Equal(["#UD", "#GP(0x33)", "#DF(0x0)"], d5.GetProperty("exception_chain").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.StartsWith("protected mode (32-bit)", d5.GetProperty("mode").GetString());
        Assert.Contains("cr0", d5.GetProperty("registers").EnumerateObject().Select(p => p.Name));
        Assert.Contains("ud2", r.Err);
        Assert.Contains("#UD -> #GP(0x33) -> #DF(0x0) -> shutdown", r.Err);
        Assert.Contains("efer", r.Err);
    }

    [Fact]
    public void An_unsupported_feature_is_6_and_named()
    {
        using var d = new TempDir();
        var r = Run("run", d.Write("g.elf", GuestImages.Virtual8086()), "--timeout", "20");
        Assert.True(r.Code == (int)ExitStatus.Unsupported, $"{r.Code}: {r.Err}");
        Assert.Contains("virtual-8086", r.Err);
        Assert.Contains(": cf  iret", r.Err); // the diagnosis names the instruction that needed it
    }

    [Fact]
    public void A_timeout_is_124_with_its_reason_in_the_json()
    {
        using var d = new TempDir();
        string json = d.File("r.json");
        var r = Run("run", d.Write("g.elf", GuestImages.SpinAll()), "--timeout", "1", "--json", json);
        Assert.True(r.Code == 124, $"{r.Code}: {r.Err}");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal("timeout", doc.RootElement.GetProperty("status_name").GetString());
        Assert.True(doc.RootElement.GetProperty("peak_resident_bytes").GetInt64() > 0);
    }

    [Fact]
    public void Bad_flags_are_2() => Assert.Equal(2, Run("run", "--smp", "0", "x.elf").Code);
}
