using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace DynaSmp.Cli.Commands;

/// <summary>
/// `dynasmp bench`: every workload of perf/workloads under DynaSmp (in-process) and under QEMU TCG, alternating,
/// several runs each. Times are medians of the workload alone: the host time from the guest's "workload NAME start"
/// serial line to its checksum line, so start-up (process, VM and boot) is excluded by measurement rather than by
/// subtracting a baseline, which a shared host made too noisy. The `startup` image (boot and exit only) is run in
/// the same alternation and its wall time reported as start-up. The speed ratio is QEMU's time over DynaSmp's
/// (above 1 = DynaSmp is faster). Exit status 0 when every DynaSmp run printed the expected checksum, 1 otherwise, 2 for bad input.
/// </summary>
static class BenchCommand
{
    const string Baseline = "startup";
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    sealed class Cell
    {
        public readonly List<WorkloadRun> Runs = new();
        public string? Error;          // first failure; later runs of this cell are skipped
        public double? Median => Runs.Count == 0 ? null : MedianOf(Runs.Select(r => r.Seconds));
        public double? WorkMedian => Runs.Count == 0 || Runs.Any(r => r.WorkSeconds == null) ? null : MedianOf(Runs.Select(r => r.WorkSeconds!.Value));
        public string? Checksum => Runs.Select(r => r.Checksum).FirstOrDefault(c => c != null);
        public bool Consistent => Runs.Select(r => r.Checksum).Distinct().Count() <= 1;
        /// <summary>Every run completed, printed <paramref name="expected"/> and passed its own check.</summary>
        public bool Matches(string expected) => Error == null && Checksum == expected && Consistent && Runs.All(r => r.SelfCheckPassed);
    }

    sealed record Row(Workload W, int Bits, Cell Dyna, Cell Qemu)
    {
        /// <summary>The host build's runs (<see cref="NativeWorkloads"/>), on 64-bit rows with --native.</summary>
        public Cell Native { get; } = new();
    }

    public static Command Create()
    {
        var filter = CliOptions.Text("--filter", "only these workloads (comma-separated names)", "NAME[,NAME...]");
        var mode = CliOptions.Choice("--mode", "both", "guest modes to run", ("both", new[] { 32, 64 }), ("32", new[] { 32 }), ("64", new[] { 64 }));
        var runs = CliOptions.Int("--runs", 3, 1, 100, "runs of each workload and engine");
        var noQemu = CliOptions.Flag("--no-qemu", "run DynaSmp only");
        var native = CliOptions.Flag("--native", "also time each workload's C source built for the host (needs gcc): the speed no translator beats");
        var json = CliOptions.OutputFile("--json", "write every run and the ratios as JSON");
        var timeout = CliOptions.Seconds("--timeout", 600, "deadline of each run");
        var c = new Command("bench", "time the perf/workloads guests under DynaSmp and QEMU TCG; checksums and speed ratios") { filter, mode, runs, noQemu, native, json, timeout };
        c.SetAction(p => Run(p.GetValue(filter), p.GetValue(mode).Value, p.GetValue(runs), p.GetValue(noQemu), p.GetValue(native), p.GetValue(json), p.GetValue(timeout)));
        return c;
    }

    static int Run(string? filter, int[] modes, int runs, bool noQemu, bool native, string? jsonPath, double timeout)
    {
        HostFiles.CheckOutput(jsonPath, "--json");

        string dir = WorkloadSuite.FindDirectory()
            ?? throw new UsageException("perf/workloads/workloads.json not found above the current directory or the program (run from the DynaSmp checkout)");
        var all = WorkloadSuite.ReadManifest(dir);
        var baseline = all.FirstOrDefault(w => w.Name == Baseline)
            ?? throw new UsageException($"{WorkloadSuite.ManifestName} has no '{Baseline}' workload (the start-up baseline)");
        var chosen = all.Where(w => w.Name != Baseline).ToList();
        if (filter != null)
        {
            var names = filter.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var n in names)
                if (!chosen.Any(w => w.Name.Equals(n, StringComparison.OrdinalIgnoreCase)))
                    throw new UsageException($"unknown workload '{n}' (workloads: {string.Join(", ", chosen.Select(w => w.Name))})");
            chosen = chosen.Where(w => names.Contains(w.Name, StringComparer.OrdinalIgnoreCase)).ToList();
        }
        foreach (var w in chosen.Prepend(baseline))
            foreach (int bits in modes)
                if (!File.Exists(w.ImagePath(dir, bits)))
                    throw new UsageException($"missing workload image {w.ImagePath(dir, bits)} (perf/workloads/build.sh rebuilds them)");

        var notes = new List<string>();
        string? qemu = null, qemuVersion = null;
        if (noQemu) notes.Add("QEMU not run (--no-qemu)");
        else
        {
            qemu = QemuReference.FindOrInstall(notes, "bench");
            if (qemu != null) qemuVersion = WorkloadSuite.QemuVersion(qemu);
        }
        string? nativeDir = null;
        var nativeExe = native ? BuildNative(dir, chosen, modes, notes, out nativeDir) : new Dictionary<string, string>();
        if (!RuntimeSettings.AlignsEveryLoop)
            notes.Add("DOTNET_JitAlignLoopMinBlockWeight=0 was not set: tier-1 loop speed depends on where RyuJIT places the code (docs/ARCHITECTURE.md, Figures)");

        var rows = new List<Row>();
        foreach (var w in chosen.Prepend(baseline))
            foreach (int bits in modes)
                rows.Add(new Row(w, bits, new Cell(), new Cell()));
        var images = rows.ToDictionary(r => (r.W.Name, r.Bits), r => File.ReadAllBytes(r.W.ImagePath(dir, r.Bits)));

        Console.Error.WriteLine($"bench: {chosen.Count} workloads x {modes.Length} modes, {runs} runs each, " +
            (qemu != null ? $"alternating DynaSmp and {qemuVersion ?? "QEMU"}" : "DynaSmp only"));
        // Warm-up: JIT-compile the emulator's own C# once, so the first timed run does not pay for it.
        foreach (int bits in modes)
            WorkloadSuite.RunDynaSmp(images[(Baseline, bits)], 1, "", TimeSpan.FromSeconds(timeout));

        string? loadBefore = LoadAverage();
        var wall = Stopwatch.StartNew();
        for (int run = 0; run < runs; run++)
        {
            foreach (var row in rows)
            {
                Measure(row, row.Dyna, "dynasmp", run, () => WorkloadSuite.RunDynaSmp(images[(row.W.Name, row.Bits)], row.W.Vcpus, "", TimeSpan.FromSeconds(timeout)));
                if (qemu != null)
                    Measure(row, row.Qemu, "qemu", run, () => WorkloadSuite.RunQemu(qemu, row.W.ImagePath(dir, row.Bits), row.W.Vcpus, "", TimeSpan.FromSeconds(timeout), timed: true));
                if (row.Bits == 64 && nativeExe.TryGetValue(row.W.Name, out var exe))
                    Measure(row, row.Native, "native", run, () => NativeWorkloads.Run(exe, row.W.N, TimeSpan.FromSeconds(timeout)));
            }
        }
        wall.Stop();
        if (nativeDir != null) try { Directory.Delete(nativeDir, recursive: true); } catch (IOException) { }
        if (loadBefore != null)
            notes.Add($"host load average (1 min) {loadBefore} at the start, {LoadAverage()} at the end, on {Environment.ProcessorCount} cores");

        return Report(rows, modes, runs, qemu != null, nativeExe.Count > 0, qemuVersion, notes, jsonPath, wall.Elapsed.TotalSeconds);
    }

    /// <summary>--native: each single-vCPU workload's host build in a temporary directory (name -> program); what could not
    /// be built or is not comparable goes to the notes.</summary>
    static Dictionary<string, string> BuildNative(string dir, List<Workload> chosen, int[] modes, List<string> notes, out string? outDir)
    {
        var built = new Dictionary<string, string>();
        outDir = null;
        if (!modes.Contains(64)) { notes.Add("native: host builds are x86-64 and shown on 64-bit rows; --mode 32 has none"); return built; }
        if (NativeWorkloads.FindCompiler() is not { } cc)
        {
            notes.Add("native: no C compiler ($CC, or gcc on PATH): the host builds were not timed (apt-get install gcc)");
            return built;
        }
        outDir = Directory.CreateTempSubdirectory("dynasmp-native-").FullName;
        foreach (var w in chosen)
        {
            if (w.Vcpus > 1) { notes.Add($"native: {w.Name} not timed: its checked total assumes {w.Vcpus} vCPUs running it at once"); continue; }
            if (NativeWorkloads.Build(cc, dir, w, outDir, out string? why) is { } exe) built[w.Name] = exe;
            else notes.Add($"native: {w.Name} not built: {why}");
        }
        if (built.Count > 0)
            notes.Add("native: the workload's C source built for this host (x86-64, -O2, no auto-vectorisation), timed around the workload alone; " +
                "shown on the 64-bit rows; ceiling = QEMU time / native time, the speed against QEMU that running at native speed would reach");
        return built;
    }

    static void Measure(Row row, Cell cell, string engine, int run, Func<WorkloadRun> go)
    {
        if (cell.Error != null) return;
        WorkloadRun r;
        try { r = go(); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            r = new WorkloadRun(0, null, null, false, $"{e.GetType().Name}: {e.Message}");
        }
        string what = $"{row.W.Name}-{row.Bits} {engine} run {run + 1}";
        if (!r.Completed)
        {
            cell.Error = r.Error ?? "no checksum";
            Console.Error.WriteLine($"bench: {what}: FAILED: {cell.Error}");
            return;
        }
        cell.Runs.Add(r);
        Console.Error.WriteLine($"bench: {what}: {r.WorkSeconds?.ToString("0.000", Inv) ?? "?"} s ({r.Seconds:0.000} s wall), checksum {r.Checksum}{(r.Checksum == row.W.Expected ? "" : $" (expected {row.W.Expected})")}");
    }

    static double MedianOf(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }


    static string Verdict(Row r, bool haveQemu)
    {
        string? d = r.Dyna.Checksum, q = r.Qemu.Checksum;
        if (r.Dyna.Error != null) return "DynaSmp FAILED";
        if (!r.Dyna.Consistent) return "DynaSmp runs differ";
        if (d != r.W.Expected) return $"DynaSmp WRONG ({d}, expected {r.W.Expected})";
        if (r.Dyna.Runs.Any(x => !x.SelfCheckPassed)) return "DynaSmp self-check FAIL";
        if (!haveQemu) return "ok (expected)";
        if (r.Qemu.Error != null) return "QEMU FAILED";
        if (q != r.W.Expected || !r.Qemu.Consistent) return $"QEMU WRONG ({q})";
        return "ok (both = expected)";
    }

    static int Report(List<Row> rows, int[] modes, int runs, bool haveQemu, bool haveNative, string? qemuVersion, List<string> notes,
        string? jsonPath, double wallSeconds)
    {
        string F(double? s) => s is double v ? v.ToString("0.000", Inv) : "-";
        string Fx(double? x) => x is double v ? v.ToString("0.00", Inv) + "x" : "-";

        var baseRows = modes.ToDictionary(b => b, b => rows.First(r => r.W.Name == Baseline && r.Bits == b));
        Console.WriteLine();
        Console.WriteLine($"DynaSmp vs {(haveQemu ? qemuVersion ?? "QEMU" : "(no QEMU)")} TCG: median of {runs} run(s), seconds from the guest's start line to its checksum line (start-up excluded); speed = QEMU time / DynaSmp time (>1: DynaSmp faster)");
        foreach (int b in modes)
            Console.WriteLine($"start-up, wall time of the {b}-bit image that only boots and exits: DynaSmp {F(baseRows[b].Dyna.Median)} s (in-process), QEMU {F(baseRows[b].Qemu.Median)} s (new process)");
        Console.WriteLine();
        var columns = new List<(string, bool)> { ("workload", false), ("mode", true), ("DynaSmp s", true), ("QEMU s", true), ("speed", true) };
        if (haveNative) { columns.Add(("native s", true)); columns.Add(("ceiling", true)); }
        columns.Add(("checksum", false)); columns.Add(("result", false));
        var table = new ResultTable(columns.ToArray());
        string[] Cells(string workload, string mode, string dyna, string q, string speed, string nat, string ceiling, string checksum, string result) =>
            haveNative ? [workload, mode, dyna, q, speed, nat, ceiling, checksum, result] : [workload, mode, dyna, q, speed, checksum, result];

        var jsonRows = new List<object>();
        var geo = new Dictionary<string, object?>();
        var geoCeiling = new Dictionary<string, object?>();
        bool allOk = true;
        foreach (int b in modes)
        {
            var logs = new List<double>();
            var ceilingLogs = new List<double>();
            foreach (var r in rows.Where(r => r.Bits == b && r.W.Name != Baseline))
            {
                double? dn = r.Dyna.WorkMedian, qn = r.Qemu.WorkMedian;
                string verdict = Verdict(r, haveQemu);
                bool ok = verdict.StartsWith("ok", StringComparison.Ordinal);
                allOk &= r.Dyna.Matches(r.W.Expected);
                double? speed = dn is double d && qn is double q && ok ? q / d : null;
                if (speed is double s) logs.Add(Math.Log(s));
                double? nn = r.Native.WorkMedian;
                bool nativeOk = nn != null && r.Native.Matches(r.W.Expected);
                if (nn != null && !nativeOk) notes.Add($"native {r.W.Name}: checksum {r.Native.Checksum}, expected {r.W.Expected}: not used");
                double? ceiling = nativeOk && qn is double q2 && q2 > 0 && nn > 0 ? q2 / nn : null;
                if (ceiling is double cl && speed != null) ceilingLogs.Add(Math.Log(cl));
                table.Row(Cells(r.W.Name, b.ToString(Inv), F(dn), F(qn), Fx(speed), nativeOk ? F(nn) : "-", Fx(ceiling), r.Dyna.Checksum ?? "-", verdict));
                jsonRows.Add(new
                {
                    workload = r.W.Name, mode = b, vcpus = r.W.Vcpus, n = r.W.N, expected = r.W.Expected,
                    dynasmp = CellJson(r.Dyna, dn), qemu = haveQemu ? CellJson(r.Qemu, qn) : null,
                    speed_vs_qemu = speed, result = verdict,
                    native = haveNative && b == 64 ? CellJson(r.Native, nn) : null, ceiling_vs_qemu = ceiling,
                });
            }
            double? g = logs.Count > 0 ? Math.Exp(logs.Average()) : null;
            geo[b.ToString(Inv)] = g;
            double? gc = ceilingLogs.Count > 0 ? Math.Exp(ceilingLogs.Average()) : null;
            geoCeiling[b.ToString(Inv)] = gc;
            string over = $"over {logs.Count} workload(s) with both times and matching checksums" +
                (gc != null ? $"; ceiling over the {ceilingLogs.Count} of them with a host build" : "");
            table.Row(Cells("geomean", b.ToString(Inv), "", "", Fx(g), "", Fx(gc), "", over));
        }
        table.Write();
        foreach (var r in rows)
        {
            if (r.Dyna.Error != null) notes.Add($"{r.W.Name} {r.Bits}-bit did not complete under DynaSmp: {r.Dyna.Error}");
            if (r.Qemu.Error != null) notes.Add($"{r.W.Name} {r.Bits}-bit did not complete under QEMU: {r.Qemu.Error}");
            if (r.Native.Error != null) notes.Add($"native {r.W.Name}: {r.Native.Error}");
        }
        Console.WriteLine();
        foreach (var n in notes) Console.WriteLine($"note: {n}");
        Console.WriteLine($"bench: {wallSeconds:0.0} s of measurement");

        if (jsonPath != null)
        {
            var doc = new
            {
                date_utc = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", Inv),
                host = new { cores = Environment.ProcessorCount, os = System.Runtime.InteropServices.RuntimeInformation.OSDescription, dotnet = Environment.Version.ToString() },
                qemu = qemuVersion, runs, modes,
                startup_s = modes.ToDictionary(b => b.ToString(Inv), b => new { dynasmp = baseRows[b].Dyna.Median, qemu = baseRows[b].Qemu.Median }),
                rows = jsonRows, geomean_speed_vs_qemu = geo, geomean_ceiling_vs_qemu = haveNative ? geoCeiling : null, notes,
            };
            HostFiles.WriteOutput(jsonPath, "--json", s => JsonSerializer.Serialize(s, doc, new JsonSerializerOptions { WriteIndented = true }));
        }
        return allOk ? 0 : 1;
    }

    static object CellJson(Cell c, double? net) => new
    {
        work_s = c.Runs.Select(r => r.WorkSeconds).ToArray(),
        wall_s = c.Runs.Select(r => r.Seconds).ToArray(),
        median_work_s = net,
        median_wall_s = c.Median,
        checksum = c.Checksum,
        self_check = c.Runs.Count == 0 ? null : (bool?)c.Runs.All(r => r.SelfCheckPassed),
        error = c.Error,
    };

    /// <summary>The 1-minute load average from /proc/loadavg (Linux), or null: a shared host makes every time noisier.</summary>
    static string? LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
