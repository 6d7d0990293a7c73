using System.Diagnostics;
using System.Text;

namespace DynaSmp.Tests.Guests;

/// <summary>A fact that compares with QEMU: skipped, with the reason, where qemu-system-x86_64 is missing, unless
/// <see cref="QemuRunner.RequireVariable"/> is 1 (as .ci/run sets it), where a missing QEMU fails the test.</summary>
public sealed class QemuFactAttribute : FactAttribute
{
    public QemuFactAttribute() => Skip = QemuRunner.SkipReason;
}

/// <summary>The theory form of <see cref="QemuFactAttribute"/>.</summary>
public sealed class QemuTheoryAttribute : TheoryAttribute
{
    public QemuTheoryAttribute() => Skip = QemuRunner.SkipReason;
}

/// <summary>Runs a multiboot image under qemu-system-x86_64 (TCG), the reference peer, exactly as ../shared/tools/qemu-ref does.</summary>
static class QemuRunner
{
    public const string Binary = "qemu-system-x86_64";
    public const string RequireVariable = "DYNASMP_REQUIRE_QEMU";

    /// <summary>Null when QEMU tests should run; otherwise why they are skipped.</summary>
    public static string? SkipReason
    {
        get
        {
            if (Find() != null || Environment.GetEnvironmentVariable(RequireVariable) == "1") return null;
            return $"{Binary} is not on PATH, so this comparison with QEMU is skipped " +
                   $"(apt-get install qemu-system-x86 to run it; {RequireVariable}=1, as .ci/run sets, makes a missing QEMU a failure)";
        }
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Wall);

    public static string? Find()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0) continue;
            var candidate = Path.Combine(dir, Binary);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static Result Run(byte[] image, int smp, TimeSpan timeout)
    {
        var qemu = Find() ?? throw new Xunit.Sdk.XunitException(
            $"{Binary} is not on PATH: the built-in guest is checked against QEMU. " +
            "Install it with: apt-get update && apt-get install -y qemu-system-x86");
        var path = Path.Combine(Path.GetTempPath(), $"dynasmp-guest-{Environment.ProcessId}-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, image);
        try
        {
            var psi = new ProcessStartInfo(qemu)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[]
            {
                "-machine", "accel=tcg", "-cpu", "max", "-kernel", path, "-smp", smp.ToString(), "-m", "256",
                "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            })
                psi.ArgumentList.Add(arg);

            var stdout = new StringBuilder();
            var stderr = new StringBuilder();
            var sw = Stopwatch.StartNew();
            using var p = new Process { StartInfo = psi };
            p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.Append(e.Data).Append('\n'); };
            p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
            p.Start();
            p.StandardInput.Close();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            if (!p.WaitForExit((int)timeout.TotalMilliseconds))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                throw new Xunit.Sdk.XunitException(
                    $"QEMU -smp {smp} did not exit within {timeout.TotalSeconds} s.\nserial:\n{stdout}\nstderr:\n{stderr}");
            }
            p.WaitForExit(); // drain the async readers
            sw.Stop();
            lock (stdout) lock (stderr) return new Result(p.ExitCode, stdout.ToString(), stderr.ToString(), sw.Elapsed);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
