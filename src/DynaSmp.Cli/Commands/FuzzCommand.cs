using System.CommandLine;
using System.Diagnostics;
using DynaSmp.Cli.Fuzz;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp fuzz`: hostile guests from consecutive seeds; any host error or hang fails, printing the seed and
/// keeping the image.</summary>
static class FuzzCommand
{
    public static Command Create()
    {
        var seeds = CliOptions.Int("--seeds", 200, 1, int.MaxValue, "how many seeds");
        var start = CliOptions.Int("--start", 0, 0, int.MaxValue, "the first seed");
        var timeout = CliOptions.Seconds("--timeout", 0.25, "deadline of each guest");
        var total = CliOptions.Seconds("--for", 86400, "stop starting new seeds after this long");
        var keep = CliOptions.Text("--keep", "directory for the images of failing seeds (default: $TMPDIR/dynasmp-fuzz-failures)", "DIR");
        var c = new Command("fuzz", "run hostile generated guests; fails (status 70) on any host error or hang") { seeds, start, timeout, total, keep };
        c.SetAction(p => Run(p.GetValue(seeds), p.GetValue(start), p.GetValue(timeout), p.GetValue(total),
            p.GetValue(keep) ?? Path.Combine(Path.GetTempPath(), "dynasmp-fuzz-failures")));
        return c;
    }

    static int Run(int seeds, int start, double timeout, double total, string keep)
    {
        var counts = new Dictionary<FuzzOutcome, int>();
        int failures = 0, ran = 0;
        var sw = Stopwatch.StartNew();
        // Host memory must not grow with the seeds: each guest's VM is disposed, and what it compiled or decoded must
        // go with it. Baseline after a warm-up; a growth past the bound is a host failure (a leak), stopping the run.
        const int LeakWarmup = 2_000, LeakCheckEvery = 1_000;
        const long LeakBound = 2L << 30;
        long baseline = 0;
        for (int seed = start; seed < start + seeds && sw.Elapsed.TotalSeconds < total; seed++)
        {
            var (image, vcpus, kind) = GuestFuzzer.Generate(seed);
            var (outcome, detail) = GuestFuzzer.RunOne(image, vcpus, timeout);
            ran++;
            counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
            // A long run leaves a trail: if it is killed, the seeds covered so far are known.
            if (ran % LeakCheckEvery == 0)
            {
                long rss = Machine.Host.HostCapacity.ResidentBytes();
                if (ran == LeakWarmup) baseline = rss;
                if (ran % 10_000 == 0) Console.WriteLine($"dynasmp fuzz: {ran} seeds done ({seed - start + 1} from {start}), {failures} failures, {sw.Elapsed.TotalMinutes:F1} min, {rss >> 20} MiB resident");
                if (baseline > 0 && rss - baseline > LeakBound)
                {
                    failures++;
                    Console.WriteLine($"FAIL host memory: {rss >> 20} MiB resident after {ran} seeds, {(rss - baseline) >> 20} MiB more than after {LeakWarmup} (bound {LeakBound >> 20} MiB): a leak across guests");
                    break;
                }
            }
            if (outcome is FuzzOutcome.HostError or FuzzOutcome.Hang)
            {
                failures++;
                Directory.CreateDirectory(keep);
                string file = Path.Combine(keep, $"seed-{seed}.elf");
                File.WriteAllBytes(file, image);
                Console.WriteLine($"FAIL seed {seed} ({kind}, {vcpus} vCPUs): {outcome}: {detail}; image kept in {file}");
            }
        }
        Console.WriteLine($"dynasmp fuzz: {ran} seeds from {start} in {sw.Elapsed.TotalSeconds:F1} s: " +
            string.Join(", ", Enum.GetValues<FuzzOutcome>().Select(o => $"{o} {counts.GetValueOrDefault(o)}")));
        return failures == 0 ? 0 : (int)ExitStatus.InternalError;
    }
}
