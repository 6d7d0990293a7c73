using System.Diagnostics;
using System.Globalization;

namespace DynaSmp.Cli.Commands;

/// <summary>
/// The host build of a workload's C source (perf/workloads/src: ref.c and NAME.c, as build.sh builds its checksum
/// reference), timed by ref.c around the workload alone: what the same code costs with no emulator at all. `dynasmp
/// bench --native` shows it beside DynaSmp and QEMU, so a speed target can be read against what the host itself does:
/// a division loop bound by the host's divider runs only 1.3x faster natively than under QEMU TCG, and no translator
/// makes it run 2x faster.
/// </summary>
public static class NativeWorkloads
{
    /// <summary>Auto-vectorisation is off: the guest images are scalar code (integer-only, or scalar SSE2 and x87), and a
    /// vectorised host loop would be a ceiling for different code.</summary>
    const string Flags = "-O2 -fno-tree-vectorize -fno-math-errno -DWL_HOST_REF";

    /// <summary>The C compiler to use: $CC, else gcc on PATH; null when there is none.</summary>
    public static string? FindCompiler() =>
        Environment.GetEnvironmentVariable("CC") is { } cc && !string.IsNullOrWhiteSpace(cc) ? cc : HostFiles.FindOnPath("gcc");

    /// <summary>Builds <paramref name="w"/>'s host program into <paramref name="outDir"/>; its path, or null and why.</summary>
    public static string? Build(string compiler, string workloadsDir, Workload w, string outDir, out string? error)
    {
        string src = Path.Combine(workloadsDir, "src");
        string exe = Path.Combine(outDir, $"native-{w.Name}");
        var r = Exec(compiler, [.. Flags.Split(' '), "-I", src, "-o", exe, Path.Combine(src, "ref.c"), Path.Combine(src, $"{w.Name}.c"), "-lm"],
            TimeSpan.FromSeconds(120));
        error = r.Failure != null ? $"{compiler} {r.Failure}"
            : r.Code != 0 ? $"{compiler} failed ({r.Code}): {FirstLine(r.Err)}" : null;
        return error == null ? exe : null;
    }

    /// <summary>Runs the host program for loop count <paramref name="n"/>: "NAME N 0xCHECKSUM SECONDS" on stdout, its exit
    /// status the workload's own self-check (0 = passed).</summary>
    public static WorkloadRun Run(string exe, uint n, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var r = Exec(exe, [n.ToString(CultureInfo.InvariantCulture)], timeout);
        double wall = sw.Elapsed.TotalSeconds;
        if (r.Failure != null) return new WorkloadRun(wall, null, null, false, r.Failure);
        string line = r.Out.Trim();
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length != 4 || !f[2].StartsWith("0x", StringComparison.Ordinal)
            || !double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double work))
            return new WorkloadRun(wall, null, null, false, $"unexpected output '{FirstLine(line)}' {FirstLine(r.Err)}".TrimEnd(), line);
        return new WorkloadRun(wall, work, f[2], r.Code == 0, null, line);
    }

    /// <summary>Runs <paramref name="file"/> to its end: exit status and both output streams, or why it could not be run
    /// or did not finish within <paramref name="timeout"/> (then it is killed).</summary>
    static (int Code, string Out, string Err, string? Failure) Exec(string file, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                return (-1, "", "", $"did not finish within {timeout.TotalSeconds:0} s");
            }
            return (p.ExitCode, stdout.Result, stderr.Result, null);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return (-1, "", "", $"could not be run: {e.Message}");
        }
    }

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
