using System.Diagnostics;
using DynaSmp.Cli.Fuzz;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp fuzz`: hostile guests from consecutive seeds; any host error or hang fails, printing the seed and
/// keeping the image.</summary>
static class FuzzCommand
{
    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--seeds", "--start", "--timeout", "--keep", "--for" });
        a.ExpectPositionals(0, "dynasmp fuzz [--seeds N] [--start SEED] [--timeout S] [--keep DIR] [--for S]");
        int seeds = a.Int("--seeds", 200, 1, int.MaxValue);
        int start = a.Int("--start", 0, 0, int.MaxValue);
        double timeout = a.Seconds("--timeout", 0.25);
        double total = a.Seconds("--for", 86400);
        string keep = a.String("--keep") ?? Path.Combine(Path.GetTempPath(), "dynasmp-fuzz-failures");
        var counts = new Dictionary<FuzzOutcome, int>();
        int failures = 0, ran = 0;
        var sw = Stopwatch.StartNew();
        for (int seed = start; seed < start + seeds && sw.Elapsed.TotalSeconds < total; seed++)
        {
            var (image, vcpus, kind) = GuestFuzzer.Generate(seed);
            var (outcome, detail) = GuestFuzzer.RunOne(image, vcpus, timeout);
            ran++;
            counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
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
