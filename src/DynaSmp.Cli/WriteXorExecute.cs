using System.Runtime.InteropServices;

namespace DynaSmp.Cli;

/// <summary>
/// The runtime's W^X mode (on by default since .NET 7) maps every page of new host code writable in a second view and
/// unmaps it after the write: each DynamicMethod the translator compiles costs mmap/munmap calls and a TLB shootdown that
/// interrupts the vCPU threads. Only the environment turns it off, and only at runtime start-up, so the CLI starts itself
/// again with <c>DOTNET_EnableWriteXorExecute=0</c> through execve (same PID, stdio, parent and signals), unless the
/// user set the variable either way.
/// </summary>
/// <remarks>PERF: Debian 12 <c>--smp 4</c>, time to the init's first line, 4 rounds in turns: 5.16 s with W^X,
/// 4.70 s without (process CPU 9.66 s against 8.75 s). The start-up the second runtime repeats costs about 0.05 s.</remarks>
static class WriteXorExecute
{
    const string Variable = "DOTNET_EnableWriteXorExecute";

    /// <summary>Whether this runtime started with W^X (what the runtime read from the environment).</summary>
    public static bool Enabled =>
        (Environment.GetEnvironmentVariable(Variable) ?? Environment.GetEnvironmentVariable("COMPlus_EnableWriteXorExecute")) != "0";

    /// <summary>Replaces this process by the same command line with W^X off; returns only when it did not (not Linux,
    /// the variable already set, or execve failed), and the command then runs here as it is.</summary>
    public static void TurnOffByRestart()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Variable) != null
            || Environment.GetEnvironmentVariable("COMPlus_EnableWriteXorExecute") != null)
            return;
        string[] argv;
        try { argv = File.ReadAllText("/proc/self/cmdline").Split('\0'); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        if (argv.Length < 2 || argv[^1] != "") return; // the kernel ends every argument, the last too, with NUL
        var args = new string?[argv.Length];
        Array.Copy(argv, args, argv.Length - 1);
        var env = new List<string?>();
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) env.Add($"{e.Key}={e.Value}");
        env.Add($"{Variable}=0");
        env.Add(null);
        RemoveDiagnosticSocket();
        execve("/proc/self/exe", args, env.ToArray());
        // Still here: execve failed and changed nothing; run with W^X.
    }

    /// <summary>The diagnostics server of the runtime being replaced made /tmp/dotnet-diagnostic-PID-*-socket and will not
    /// remove it (its shutdown never runs); the next runtime makes its own under the same PID.</summary>
    static void RemoveDiagnosticSocket()
    {
        try
        {
            string dir = Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } t ? t : "/tmp";
            foreach (var f in Directory.EnumerateFiles(dir, $"dotnet-diagnostic-{Environment.ProcessId}-*-socket")) File.Delete(f);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [DllImport("libc", EntryPoint = "execve", SetLastError = true)]
    static extern int execve(string path, string?[] argv, string?[] envp);
}
