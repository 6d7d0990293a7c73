using System.Diagnostics;

namespace DynaSmp.Tests.Hostile;

/// <summary>Runs the `dynasmp` command as a user would, with a hard limit, and measures its wall time.</summary>
static class DynasmpProcess
{
    /// <summary>Tests that time whole `dynasmp` processes run one at a time: several at once on two cores would
    /// measure the host's overload rather than DynaSmp's deadline.</summary>
    public const string Collection = "dynasmp processes";

    static readonly string Dll = typeof(DynaSmp.Cli.CliOptions).Assembly.Location;

    public sealed record Result(int Code, string Out, string Err, double Seconds);

    /// <param name="launcher">A command that runs `dotnet` for us, e.g. setpriv to drop root's privileges.</param>
    /// <param name="unset">Variables the process must not inherit from the test host.</param>
    public static Result Run(string[] args, IDictionary<string, string>? env = null, double limitSeconds = 60, string[]? launcher = null, string[]? unset = null)
    {
        var psi = new ProcessStartInfo(launcher?[0] ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (launcher != null) { foreach (var l in launcher[1..]) psi.ArgumentList.Add(l); psi.ArgumentList.Add("dotnet"); }
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        if (unset != null) foreach (var k in unset) psi.Environment.Remove(k);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(limitSeconds)))
        {
            p.Kill(true);
            throw new TimeoutException($"dynasmp {string.Join(' ', args)} did not finish in {limitSeconds} s (a hang)");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result, sw.Elapsed.TotalSeconds);
    }

    public static Result Run(params string[] args) => Run(args, null);

    /// <summary>A file in a fresh temporary directory, deleted with it by <see cref="TempDir.Dispose"/>.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("dynasmp-hostile-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public string Write(string name, byte[] bytes) { var f = File(name); System.IO.File.WriteAllBytes(f, bytes); return f; }
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
