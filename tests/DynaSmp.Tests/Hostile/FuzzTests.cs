using DynaSmp.Cli.Fuzz;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 7 in CI: a few hundred generated hostile guests (random bytes; random valid 32- or 64-bit BSP and 16-bit AP
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

    /// <summary>The 64-bit fuzz streams really run in 64-bit mode: after the image's own long-mode entry, mov rax, imm64
    /// then shr rax, 32 leaves 0x12 in AL only if REX.W took effect (in 32-bit code 0x48 is DEC EAX).</summary>
    [Fact]
    public void The_long_mode_entry_reaches_64_bit_code()
    {
        byte[] code64 = [0x48, 0xB8, 0, 0, 0, 0, 0x12, 0, 0, 0, 0x48, 0xC1, 0xE8, 0x20, 0xE6, 0xF4, 0xF4];
        var image = GuestImages.Flat([.. GuestImages.EnterLongMode(GuestImages.Entry), .. code64]);
        var (outcome, detail) = GuestFuzzer.RunOne(image, 1, 10);
        Assert.Equal(FuzzOutcome.GuestExit, outcome);
        Assert.Equal("isa-debug-exit status 37", detail); // (0x12 << 1) | 1
    }

    /// <summary>Fuzzed bytes reach the reset ports (seed 53334 wrote port 0x92): the guest's reset is its own outcome, not a host error.</summary>
    [Theory]
    [InlineData(new byte[] { 0xB0, 0xFE, 0xE6, 0x64, 0xF4 }, "Reset")]              // mov al, 0xFE; out 0x64, al (8042 pulse)
    [InlineData(new byte[] { 0xB0, 0x01, 0xE6, 0x92, 0xF4 }, "Reset")]              // mov al, 1; out 0x92, al (fast reset)
    [InlineData(new byte[] { 0x66, 0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE, 0xF4 }, "Reset")] // out 0xCF9, 6
    public void A_guest_reset_is_a_guest_outcome(byte[] code, string kind)
    {
        var (outcome, detail) = GuestFuzzer.RunOne(GuestImages.Flat(code), 1, 10);
        Assert.Equal(FuzzOutcome.GuestExit, outcome);
        Assert.StartsWith(kind, detail);
    }

    [Fact]
    public void Seeds_cover_random_bytes_and_32_and_64_bit_streams()
    {
        var kinds = new HashSet<string>();
        for (int seed = 0; seed < 40; seed++) kinds.Add(GuestFuzzer.Generate(seed).Kind);
        Assert.Equal(["instructions", "instructions-64", "random-bytes"], kinds.Order());
    }

    [Fact]
    public void The_same_seed_gives_the_same_image()
    {
        Assert.Equal(GuestFuzzer.Generate(42).Image, GuestFuzzer.Generate(42).Image);
    }
}
