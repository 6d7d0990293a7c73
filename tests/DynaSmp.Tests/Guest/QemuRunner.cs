using System.Diagnostics;
using System.Text;
using DynaSmp.Cli;

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
    public const string Binary = QemuReference.Binary;
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

    public static string? Find() => QemuReference.Find();

    public static Result Run(byte[] image, int smp, TimeSpan timeout)
    {
        var qemu = Find() ?? throw new Xunit.Sdk.XunitException(
            $"{Binary} is not on PATH: the built-in guest is checked against QEMU. " +
            "Install it with: apt-get update && apt-get install -y qemu-system-x86");
        var path = Path.Combine(Path.GetTempPath(), $"dynasmp-guest-{Environment.ProcessId}-{Guid.NewGuid():N}.elf");
        File.WriteAllBytes(path, image);
        try
        {
            var stdout = new StringBuilder();
            var sw = Stopwatch.StartNew();
            var r = QemuReference.Run(qemu, path, smp, "", timeout, line => { lock (stdout) stdout.Append(line).Append('\n'); });
            sw.Stop();
            lock (stdout)
            {
                if (r.ExitCode is not { } code)
                    throw new Xunit.Sdk.XunitException($"QEMU -smp {smp} did not exit within {timeout.TotalSeconds} s.\nserial:\n{stdout}\nstderr:\n{r.Stderr}");
                return new Result(code, stdout.ToString(), r.Stderr, sw.Elapsed);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
