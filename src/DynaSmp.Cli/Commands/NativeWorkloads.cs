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
        var psi = new ProcessStartInfo(compiler) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in Flags.Split(' ')) psi.ArgumentList.Add(a);
        foreach (var a in new[] { "-I", src, "-o", exe, Path.Combine(src, "ref.c"), Path.Combine(src, $"{w.Name}.c"), "-lm" }) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(120_000)) { p.Kill(true); error = $"{compiler} did not finish within 120 s"; return null; }
            if (p.ExitCode != 0) { error = $"{compiler} failed ({p.ExitCode}): {FirstLine(stderr.Result)}"; return null; }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            error = $"{compiler} could not be run: {e.Message}";
            return null;
        }
        error = null;
        return exe;
    }

    /// <summary>Runs the host program for loop count <paramref name="n"/>: "NAME N 0xCHECKSUM SECONDS" on stdout, its exit
    /// status the workload's own self-check (0 = passed).</summary>
    public static WorkloadRun Run(string exe, uint n, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(n.ToString(CultureInfo.InvariantCulture));
        var sw = Stopwatch.StartNew();
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout)) { p.Kill(true); return new WorkloadRun(sw.Elapsed.TotalSeconds, null, null, false, $"did not finish within {timeout.TotalSeconds:0} s"); }
            sw.Stop();
            string line = stdout.Result.Trim();
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length != 4 || !f[2].StartsWith("0x", StringComparison.Ordinal)
                || !double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double work))
                return new WorkloadRun(sw.Elapsed.TotalSeconds, null, null, false, $"unexpected output '{FirstLine(line)}' {FirstLine(stderr.Result)}".TrimEnd(), line);
            return new WorkloadRun(sw.Elapsed.TotalSeconds, work, f[2], p.ExitCode == 0, null, line);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return new WorkloadRun(sw.Elapsed.TotalSeconds, null, null, false, $"could not be run: {e.Message}");
        }
    }

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
