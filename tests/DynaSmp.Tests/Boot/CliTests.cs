using System.Diagnostics;
using System.Text.Json;
using DynaSmp.Tests.Guests;

namespace DynaSmp.Tests.Boot;

/// <summary>The `dynasmp` command as a user runs it: exit statuses, JSON fields, clear errors.</summary>
public class CliTests
{
    static readonly string Dll = typeof(DynaSmp.Cli.CliOptions).Assembly.Location;

    static (int Code, string Out, string Err) Dynasmp(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("dynasmp did not finish in 120 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Boot_runs_a_fleet_a_window_at_a_time()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-boot-{Guid.NewGuid():N}.json");
        var (code, output, err) = Dynasmp("boot", "--vms", "5", "--parallel", "2", "--cpus", "3", "--json", json);
        Assert.True(code == 0, output + err);
        Assert.Contains("5 VMs x 3 vCPUs, 64 MiB each, 2 at a time", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal(2, doc.RootElement.GetProperty("parallel").GetInt32());
        Assert.Equal(15, doc.RootElement.GetProperty("vcpus_online").GetInt32());
        Assert.Equal(10, doc.RootElement.GetProperty("bringup_samples_us").GetArrayLength()); // two APs per VM
    }

    /// <summary>Without --parallel the built-in guest runs one VM per two host CPUs (a VM in bring-up keeps its BSP and an
    /// AP busy at once), and always at least one.</summary>
    [Fact]
    public void Boot_defaults_to_one_vm_per_two_host_cpus()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-boot-{Guid.NewGuid():N}.json");
        var (code, output, err) = Dynasmp("boot", "--vms", "3", "--cpus", "2", "--json", json);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        int window = Math.Max(1, Environment.ProcessorCount / 2);
        Assert.Equal(window, doc.RootElement.GetProperty("parallel").GetInt32());
        if (window < 3) Assert.Contains($"3 VMs x 2 vCPUs, 64 MiB each, {window} at a time", output);
        Assert.Equal(6, doc.RootElement.GetProperty("vcpus_online").GetInt32());
    }

    /// <summary>`boot --qemu` boots the same fleet under QEMU, one process per VM, and reports the ratio.</summary>
    [QemuFact]
    public void Boot_compares_the_same_fleet_with_qemu()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-boot-{Guid.NewGuid():N}.json");
        var (code, output, err) = Dynasmp("boot", "--vms", "3", "--parallel", "2", "--cpus", "2", "--qemu", "--json", json);
        Assert.True(code == 0, output + err);
        Assert.Contains("QEMU TCG:          3 of 3 VMs booted", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var q = doc.RootElement.GetProperty("qemu");
        Assert.Equal(3, q.GetProperty("vms_booted").GetInt32());
        Assert.Equal(0, q.GetProperty("failures").GetArrayLength());
        Assert.True(q.GetProperty("wall_s").GetDouble() > 0 && q.GetProperty("speed").GetDouble() > 0);
    }

    [Fact]
    public void Boot_writes_the_json_fields_CI_reads()
    {
        string json = Path.Combine(Path.GetTempPath(), $"dynasmp-boot-{Guid.NewGuid():N}.json");
        var (code, output, err) = Dynasmp("boot", "--vms", "3", "--cpus", "4", "--json", json);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var r = doc.RootElement;
        Assert.Equal(3, r.GetProperty("vms").GetInt32());
        Assert.Equal(4, r.GetProperty("vcpus_per_vm").GetInt32());
        Assert.Equal(12, r.GetProperty("vcpus_online").GetInt32());
        Assert.Equal(0, r.GetProperty("failures").GetArrayLength());
        var b = r.GetProperty("bringup_us");
        Assert.True(b.GetProperty("min").GetDouble() > 0 && b.GetProperty("min").GetDouble() <= b.GetProperty("median").GetDouble());
        Assert.True(b.GetProperty("median").GetDouble() <= b.GetProperty("p99").GetDouble() && b.GetProperty("p99").GetDouble() <= b.GetProperty("max").GetDouble());
        Assert.True(r.GetProperty("wall_s").GetDouble() > 0);
        Assert.True(r.GetProperty("guest_instructions").GetUInt64() > 0);
        Assert.True(r.GetProperty("mips").GetDouble() > 0);
        File.Delete(json);
    }

    [Fact]
    public void Run_gives_QEMUs_exit_status_for_the_exported_guest()
    {
        string image = Path.Combine(Path.GetTempPath(), $"dynasmp-guest-{Guid.NewGuid():N}.elf");
        Assert.Equal(0, Dynasmp("guest", "export", image).Code);
        var (code, output, _) = Dynasmp("run", image, "--smp", "4");
        Assert.Equal(1, code); // isa-debug-exit value 0 -> (0 << 1) | 1
        Assert.Contains("SMP: 4 of 4 CPUs online", output);
        File.Delete(image);
    }

    [Fact]
    public void Trace_explains_every_IPI()
    {
        var (code, output, _) = Dynasmp("trace", "--cpus", "2");
        Assert.Equal(0, code);
        Assert.Contains("INIT de-assert (level-triggered, level=0): ignored", output);
        Assert.Contains("SIPI in INIT_RECEIVED", output);
        Assert.Contains("UNINITIALIZED -> INIT_RECEIVED", output);
        Assert.Contains("Why INIT twice and SIPI twice", output);
    }

    [Theory]
    [InlineData("boot", "--cpus", "0")]
    [InlineData("boot", "--cpus", "many")]
    [InlineData("boot", "--vms")]
    [InlineData("boot", "--parallel", "0")]
    [InlineData("boot", "--mem", "12Q")]
    [InlineData("boot", "--ipi-delays", "sometimes")]
    [InlineData("boot", "--frobnicate", "1")]
    [InlineData("nonsense")]
    [InlineData("run", "/definitely/not/here.elf")]
    public void Bad_arguments_give_a_clear_error_and_status_2(params string[] args)
    {
        var (code, output, err) = Dynasmp(args);
        Assert.Equal(2, code);
        Assert.StartsWith("dynasmp: ", err);
        Assert.DoesNotContain("   at ", err + output); // never a stack trace
    }

    [Fact]
    public void A_file_that_is_not_multiboot_is_refused_clearly()
    {
        string path = Path.Combine(Path.GetTempPath(), $"dynasmp-junk-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 1, 2, 3 });
        var (code, _, err) = Dynasmp("run", path);
        Assert.Equal(2, code);
        Assert.Contains("not a bootable image", err);
        File.Delete(path);
    }

    [Fact]
    public void Help_lists_every_command_and_each_command_has_its_own_help()
    {
        var (code, output, _) = Dynasmp("--help");
        Assert.Equal(0, code);
        string[] commands = ["boot", "trace", "run", "guest", "demo", "bench", "fuzz", "completion"];
        foreach (var c in commands) Assert.Contains($"  {c}", output);
        var (bootCode, bootHelp, _) = Dynasmp("boot", "--help");
        Assert.Equal(0, bootCode);
        Assert.Contains("--ipi-delays <none|linux>", bootHelp);
        Assert.Contains("[default: 64M]", bootHelp);
    }

    [Fact]
    public void Errors_point_to_the_help_of_the_command_that_was_given()
    {
        var (code, _, err) = Dynasmp("guest", "export");
        Assert.Equal(2, code);
        Assert.Contains("(see: dynasmp guest export --help)", err);
    }

    /// <summary>Shell completion goes through System.CommandLine's [suggest] directive, which the bash script of
    /// `dynasmp completion bash` calls: choices and option names come from the parser itself.</summary>
    [Fact]
    public void Completion_offers_option_names_and_choices()
    {
        Assert.Equal(["linux", "none"], Dynasmp("[suggest:18]", "boot --ipi-delays ").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order());
        Assert.Contains("--cpus", Dynasmp("[suggest:8]", "boot --c").Out);
        var (code, script, _) = Dynasmp("completion", "bash");
        Assert.Equal(0, code);
        Assert.Contains("complete -F _dynasmp_complete dynasmp", script);
    }
}
