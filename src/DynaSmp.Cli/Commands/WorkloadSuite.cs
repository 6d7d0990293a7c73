using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DynaSmp.Jit.Translation;
using DynaSmp.Machine;

namespace DynaSmp.Cli.Commands;

/// <summary>One workload of perf/workloads/workloads.json: the loop counts and the checksums it must print for them.</summary>
public sealed record Workload(string Name, int Vcpus, uint N, string Expected, uint TestN, string TestExpected)
{
    public string ImagePath(string dir, int bits) => Path.Combine(dir, "images", $"{Name}-{bits}.elf");
}

/// <summary>What one run of a workload image printed and how long it took: <see cref="Seconds"/> is the wall clock of
/// the whole run (start-up included); <see cref="WorkSeconds"/> the host time between the guest's "workload NAME start"
/// line and its checksum line, i.e. the workload alone (null if either line is missing).</summary>
public sealed record WorkloadRun(double Seconds, double? WorkSeconds, string? Checksum, bool SelfCheckPassed, string? Error, string Serial = "")
{
    public bool Completed => Error == null && Checksum != null;
}

/// <summary>
/// The guest workload suite (perf/workloads): finds and reads the manifest, and runs one image under DynaSmp
/// in-process (as `dynasmp run` does) or under QEMU TCG with the devices DynaSmp models. Used by `dynasmp bench`
/// and by the workload tests.
/// </summary>
public static partial class WorkloadSuite
{
    public const string ManifestName = "workloads.json";

    /// <summary>The image prints "workload NAME mode=B n=N checksum=0xHHHHHHHH ok|FAIL" before its debug exit.</summary>
    [GeneratedRegex(@"checksum=(0x[0-9a-f]{8}) (ok|FAIL)")]
    private static partial Regex ChecksumLine();

    /// <summary>perf/workloads, looked for upwards from the current directory, then from the program's own directory.</summary>
    public static string? FindDirectory()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, "perf", "workloads");
                if (File.Exists(Path.Combine(candidate, ManifestName))) return candidate;
            }
        }
        return null;
    }

    public static IReadOnlyList<Workload> ReadManifest(string dir)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, ManifestName)));
        var list = new List<Workload>();
        foreach (var w in doc.RootElement.GetProperty("workloads").EnumerateArray())
        {
            list.Add(new Workload(w.GetProperty("name").GetString()!, w.GetProperty("vcpus").GetInt32(),
                w.GetProperty("n").GetUInt32(), w.GetProperty("expected").GetString()!,
                w.GetProperty("testN").GetUInt32(), w.GetProperty("testExpected").GetString()!));
        }
        return list;
    }

    /// <summary>Collects serial output and notes when the start and checksum lines arrive (host stopwatch).</summary>
    sealed class SerialLog(Stopwatch clock)
    {
        readonly StringBuilder _text = new();
        readonly StringBuilder _line = new();
        double? _start, _end;

        public void Byte(byte b)
        {
            char c = (char)b;
            lock (_text)
            {
                _text.Append(c);
                if (c != '\n') { _line.Append(c); return; }
                Line(_line.ToString());
                _line.Clear();
            }
        }

        public void Line(string line)
        {
            double now = clock.Elapsed.TotalSeconds;
            lock (_text)
            {
                if (line.StartsWith("workload ", StringComparison.Ordinal) && line.TrimEnd().EndsWith(" start", StringComparison.Ordinal)) _start ??= now;
                else if (line.Contains("checksum=", StringComparison.Ordinal)) _end ??= now;
            }
        }

        public void AppendLine(string line)
        {
            lock (_text) _text.Append(line).Append('\n');
            Line(line);
        }

        public WorkloadRun Result(double seconds, string? error)
        {
            lock (_text)
            {
                double? work = _start is double s && _end is double e ? e - s : null;
                return Parse(_text.ToString(), seconds, work, error);
            }
        }
    }

    static WorkloadRun Parse(string serial, double seconds, double? work, string? error)
    {
        var m = ChecksumLine().Match(serial);
        if (!m.Success)
        {
            string tail = serial.Trim().Split('\n').LastOrDefault()?.Trim() ?? "";
            return new WorkloadRun(seconds, null, null, false, error ?? (tail.Length > 0 ? $"no checksum line (last output: {tail})" : "no output"), serial);
        }
        return new WorkloadRun(seconds, work, m.Groups[1].Value, m.Groups[2].Value == "ok", error, serial);
    }

    /// <summary>Runs the image in this process. An emulator failure (unsupported instruction, triple fault,
    /// timeout) comes back as <see cref="WorkloadRun.Error"/> with the VM's own message.</summary>
    public static WorkloadRun RunDynaSmp(byte[] image, int vcpus, string commandLine, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var serial = new SerialLog(sw);
        using (var pc = new Pc(new VmConfig { Vcpus = vcpus, MemoryBytes = 256UL << 20, Trace = false }, serial.Byte))
        {
            pc.LoadMultiboot(image, commandLine);
            pc.Vm.Start();
            bool ended = pc.Vm.WaitForExit(timeout);
            if (!ended) pc.Vm.Stop(VmExitKind.Stopped, $"timeout after {timeout.TotalSeconds:0} s");
            pc.Vm.Join();
            sw.Stop();
            if (pc.Vm.Config.Jit.ProfileFallbacks) PrintTierProfile(pc.Vm);
            string? error = pc.Vm.ExitKind == VmExitKind.DebugExit ? null : $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage}";
            return serial.Result(sw.Elapsed.TotalSeconds, error);
        }
    }

    /// <summary>DYNASMP_PROFILE_FALLBACKS=1: where the run's time went between the tiers, and the instruction forms
    /// translated code still hands to tier 0, most frequent first (stderr).</summary>
    internal static void PrintTierProfile(Vm vm)
    {
        Console.Error.WriteLine($"profile: {TierUp.Compiled} regions compiled in {Stopwatch.GetElapsedTime(0, TierUp.CompileTicks).TotalSeconds:F2} s of compile thread, {TierUp.Failed} failed, {TierUp.ReleasedCold} went cold while queued, " +
            $"{TierUp.Promoted} promoted to full regions ({TierUp.PromotionsRefused} no bigger), {TierUp.SharedAdopted} taken from another VM's translations early ({TierUp.SharedProbes} probes)");
        for (int n = 1; n < TierUp.ProfileBySize.Length; n++)
        {
            var c = TierUp.ProfileBySize[n];
            if (c.Regions == 0) continue;
            Console.Error.WriteLine($"profile:   {n,2}-block regions: {c.Regions,6}, {c.Instructions / (double)c.Regions,6:F1} insns, {c.IlBytes / c.Regions,6} IL bytes, " +
                $"{Stopwatch.GetElapsedTime(0, c.Ticks).TotalMilliseconds / c.Regions,6:F2} ms each");
        }
        var calls = new Dictionary<Iced.Intel.Code, long>();
        var general = new Dictionary<Iced.Intel.Code, long>();
        long lookups = 0, interpreted = 0, entries = 0, slowWrites = 0, codePageWrites = 0, predictedReturns = 0;
        long jcMisses = 0, jcFull = 0, jcNonGlobal = 0, jcPage = 0;
        foreach (var v in vm.Vcpus)
        {
            lookups += v.Core.DispatcherLookups; interpreted += v.Core.InterpretedBlocks; entries += v.Core.CompiledBlockEntries;
            slowWrites += v.Core.SlowWrites; codePageWrites += v.Core.CodePageWrites;
            unsafe { predictedReturns += v.Core.State->RasHits; }
            var jc = v.Core.JumpCache;
            jcMisses += jc.Misses; jcFull += jc.FullFlushes; jcNonGlobal += jc.NonGlobalFlushes; jcPage += jc.PageFlushes;
            AddByCode(calls, v.Core.TierZeroCalls!);
            AddByCode(general, v.Core.GeneralDispatch!);
        }
        static void AddByCode(Dictionary<Iced.Intel.Code, long> into, long[] counts)
        {
            for (int c = 0; c < counts.Length; c++)
                if (counts[c] != 0) into[(Iced.Intel.Code)c] = into.GetValueOrDefault((Iced.Intel.Code)c) + counts[c];
        }
        Console.Error.WriteLine($"profile: {lookups} dispatcher lookups, {interpreted} blocks interpreted, {entries} compiled-block entries from the dispatcher");
        Console.Error.WriteLine($"profile: jump cache: {jcMisses} dispatcher misses; flushed {jcFull} times whole, {jcNonGlobal} for a CR3 load (global entries kept), {jcPage} for an INVLPG (its page's entries)");
        Console.Error.WriteLine($"profile: {slowWrites} slow-path stores, {codePageWrites} of them to pages holding translated code; {predictedReturns} returns left through a predicted slot");
        foreach (var (code, n) in calls.OrderByDescending(kv => kv.Value).Take(12))
            Console.Error.WriteLine($"profile:   tier-0 call {code,-32} {n,12}");
        Console.Error.WriteLine($"profile: {general.Values.Sum()} interpreted instructions outside tier 0's fast forms");
        foreach (var (code, n) in general.OrderByDescending(kv => kv.Value).Take(16))
            Console.Error.WriteLine($"profile:   general dispatch {code,-26} {n,12}");
        var blocks = new Dictionary<Block, long>();
        foreach (var v in vm.Vcpus)
            foreach (var (b, n) in v.Core.InterpretedByBlock!) blocks[b] = blocks.GetValueOrDefault(b) + n;
        int threshold = vm.Config.Jit.TierUpThreshold;
        long[] byState = new long[4]; int[] blocksByState = new int[4];
        foreach (var (b, n) in blocks)
        {
            int st = b.Compiled != null ? 0 : b.ExecCount >= threshold ? 1 : b.ExecCount >= threshold / 10 ? 2 : 3;
            byState[st] += n; blocksByState[st]++;
        }
        Console.Error.WriteLine($"profile: interpretations by block state at the end: compiled {byState[0]} ({blocksByState[0]} blocks), " +
            $"not compiled at >= {threshold} runs {byState[1]} ({blocksByState[1]}), {threshold / 10}-{threshold - 1} runs {byState[2]} ({blocksByState[2]}), " +
            $"fewer {byState[3]} ({blocksByState[3]})");
        foreach (var (b, n) in blocks.OrderByDescending(kv => kv.Value).Take(8))
            Console.Error.WriteLine($"profile:   interpreted {n,9}x block {b.Rip:x} ({b.Insns.Length} insns, ends {b.Insns[^1].Mnemonic}, " +
                $"exec {b.ExecCount}, compiled {b.Compiled != null}, spin {b.IsSpinWait}, invalid {b.Invalid})");
    }

    /// <summary>Runs the image under QEMU TCG (<see cref="QemuReference"/>); with <paramref name="timed"/> the
    /// workload is timed on its serial stream as lines arrive (the bench), otherwise only its text counts.</summary>
    public static WorkloadRun RunQemu(string qemu, string imagePath, int vcpus, string commandLine, TimeSpan timeout, bool timed = false)
    {
        var sw = Stopwatch.StartNew();
        var serial = new SerialLog(sw);
        var r = QemuReference.Run(qemu, imagePath, vcpus, commandLine, timeout, serial.AppendLine, timedLines: timed);
        sw.Stop();
        // isa-debug-exit value v makes QEMU exit with (v << 1) | 1; any other status is QEMU's own failure.
        string? error = r.ExitCode switch
        {
            null => $"QEMU did not exit within {timeout.TotalSeconds:0} s",
            int code when (code & 1) == 1 => null,
            int code => $"QEMU exit status {code}: {r.Stderr.Trim()}",
        };
        return serial.Result(sw.Elapsed.TotalSeconds, error);
    }

    /// <summary>"QEMU emulator version 7.2.x (...)" -> its first line, or null.</summary>
    public static string? QemuVersion(string qemu)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(qemu, "--version") { RedirectStandardOutput = true, UseShellExecute = false })!;
            string first = p.StandardOutput.ReadLine() ?? "";
            p.WaitForExit(10_000);
            return first.Trim();
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
