using DynaSmp.Cli.Fuzz;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 7 in CI: a few hundred generated hostile guests (random bytes; random valid 32-bit BSP and 16-bit AP
/// instruction streams with privileged instructions, MSR/port/MMIO accesses, random IPIs, self-modifying stores;
/// 1-8 vCPUs). Each must end with a classified outcome within its deadline: never a host error or a hang.</summary>
[Collection(DynasmpProcess.Collection)]
public class FuzzTests
{
    [Fact]
    public void Three_hundred_seeds_end_with_a_guest_outcome()
    {
        var failures = new List<string>();
        var seen = new HashSet<FuzzOutcome>();
        for (int seed = 0; seed < 300; seed++)
        {
            var (image, vcpus, kind) = GuestFuzzer.Generate(seed);
            var (outcome, detail) = GuestFuzzer.RunOne(image, vcpus, 0.1);
            seen.Add(outcome);
            if (outcome is FuzzOutcome.HostError or FuzzOutcome.Hang)
            {
                string file = Path.Combine(Path.GetTempPath(), $"dynasmp-fuzz-seed-{seed}.elf");
                File.WriteAllBytes(file, image);
                failures.Add($"seed {seed} ({kind}, {vcpus} vCPUs): {outcome}: {detail} (image {file})");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.Contains(FuzzOutcome.TripleFault, seen);
    }

    [Fact]
    public void The_same_seed_gives_the_same_image()
    {
        Assert.Equal(GuestFuzzer.Generate(42).Image, GuestFuzzer.Generate(42).Image);
    }
}
