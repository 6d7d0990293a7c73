using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DynaSmp.Cli;

/// <summary>qemu-system-x86_64 (TCG), the reference peer, run exactly as ../shared/tools/qemu-ref runs it: the one
/// place that knows the binary and its command line, for the bench and the comparison tests alike.</summary>
public static class QemuReference
{
    public const string Binary = "qemu-system-x86_64";

    /// <summary>The binary on PATH, or null.</summary>
    public static string? Find() => HostFiles.FindOnPath(Binary);

    /// <summary>How a run ended: QEMU's exit status (isa-debug-exit value v gives (v &lt;&lt; 1) | 1), or null when it
    /// was killed at <c>timeout</c>; and what it wrote to stderr.</summary>
    public sealed record Outcome(int? ExitCode, string Stderr);

    /// <summary>Boots <paramref name="imagePath"/> (multiboot or bzImage, with an optional initrd) with -kernel (TCG,
    /// -cpu max, 256 MiB unless told, isa-debug-exit at 0xF4); every serial line goes to <paramref name="onLine"/>.
    /// With <paramref name="timedLines"/> the serial port is QEMU's stdio and each line is handed over as it arrives
    /// (the bench times the guest by them); otherwise it is a file, read after QEMU exits.</summary>
    /// <remarks>Why a file by default: QEMU's 16550 holds THRE clear while its stdio pipe is full, so a test host too
    /// busy to drain the pipe made the guest's bounded THRE poll give up and drop characters (seen in CI).</remarks>
    public static Outcome Run(string qemu, string imagePath, int vcpus, string commandLine, TimeSpan timeout, Action<string> onLine,
        string? initrdPath = null, int memoryMiB = 256, bool timedLines = false)
    {
        string? serialFile = timedLines ? null : Path.Combine(Path.GetTempPath(), $"dynasmp-qemu-serial-{Guid.NewGuid():N}.txt");
        try
        {
            var outcome = Run(qemu, imagePath, vcpus, commandLine, timeout, serialFile == null ? onLine : null, initrdPath, memoryMiB, serialFile);
            if (serialFile != null && File.Exists(serialFile))
            {
                string text = File.ReadAllText(serialFile, Encoding.Latin1);
                int start = 0;
                for (int nl; (nl = text.IndexOf('\n', start)) >= 0; start = nl + 1)
                    onLine(text.AsSpan(start, nl - start).TrimEnd('\r').ToString());
                if (start < text.Length) onLine(text[start..].TrimEnd('\r'));
            }
            return outcome;
        }
        finally
        {
            if (serialFile != null) File.Delete(serialFile);
        }
    }

    static Outcome Run(string qemu, string imagePath, int vcpus, string commandLine, TimeSpan timeout, Action<string>? onLine,
        string? initrdPath, int memoryMiB, string? serialFile)
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
            "-machine", "accel=tcg", "-cpu", "max", "-kernel", imagePath, "-smp", vcpus.ToString(CultureInfo.InvariantCulture),
            "-m", memoryMiB.ToString(CultureInfo.InvariantCulture), "-display", "none", "-serial", serialFile == null ? "stdio" : "file:" + serialFile, "-monitor", "none", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
        })
            psi.ArgumentList.Add(arg);
        if (commandLine.Length > 0) { psi.ArgumentList.Add("-append"); psi.ArgumentList.Add(commandLine); }
        if (initrdPath != null) { psi.ArgumentList.Add("-initrd"); psi.ArgumentList.Add(initrdPath); }

        var stderr = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        // QEMU's stdio chardev writes each guest byte as it comes, so line arrival times are the guest's own.
        p.OutputDataReceived += (_, e) => { if (e.Data != null) onLine?.Invoke(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
        p.Start();
        p.StandardInput.Close();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        bool exited = p.WaitForExit((int)timeout.TotalMilliseconds);
        if (!exited) p.Kill(entireProcessTree: true);
        p.WaitForExit(); // drain the async readers
        lock (stderr) return new Outcome(exited ? p.ExitCode : null, stderr.ToString());
    }

    /// <summary>The binary on PATH, else apt-get update and apt-get install -y qemu-system-x86; null (and a note) if that fails.</summary>
    public static string? FindOrInstall(List<string> notes, string command)
    {
        if (Find() is { } found) return found;
        Console.Error.WriteLine($"{command}: {Binary} not found; installing qemu-system-x86 with apt-get");
        foreach (var step in new[] { "update -qq", "install -y -qq qemu-system-x86" })
        {
            string? failure;
            try
            {
                var psi = new ProcessStartInfo("apt-get", step) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
                using var p = Process.Start(psi)!;
                var err = p.StandardError.ReadToEndAsync();
                p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                failure = p.ExitCode == 0 ? null : $"exit status {p.ExitCode}: {err.Result.Trim().Split('\n').LastOrDefault()}";
            }
            catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
            {
                failure = e.Message;
            }
            if (failure != null)
            {
                notes.Add($"QEMU not run: apt-get {step.Split(' ')[0]} failed ({failure}); DynaSmp times only");
                Console.Error.WriteLine($"{command}: {notes[^1]}");
                return null;
            }
        }
        return Find() ?? Fail(notes);

        static string? Fail(List<string> notes)
        {
            notes.Add($"QEMU not run: apt-get installed qemu-system-x86 but {Binary} is still not on PATH");
            return null;
        }
    }
}
