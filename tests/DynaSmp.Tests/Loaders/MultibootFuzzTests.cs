using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Loaders;

namespace DynaSmp.Tests.Loaders;

/// <summary>Garbage, truncations and mutations of valid images: the loader either plans a load that applies cleanly
/// (with the info area on no loaded byte) or throws MultibootImageException, never anything else.</summary>
public class MultibootFuzzTests
{
    const ulong Ram = 4 << 20;

    static bool Check(byte[] image, string what, GuestRam ram)
    {
        MultibootLoadPlan plan;
        try
        {
            plan = MultibootLoader.Plan(image, Ram, "fuzz");
        }
        catch (MultibootImageException)
        {
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}");
            return false;
        }
        MultibootInfoPlacementTests.AssertInfoAreaIsFree(plan, what);
        try
        {
            var boot = plan.Apply(ram);
            Assert.True(boot.Eip < Ram, what);
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: Apply threw {e.GetType().Name}: {e.Message}");
        }
        return true;
    }

    [Fact]
    public void Every_truncation_of_valid_images_is_handled()
    {
        using var ram = new GuestRam(Ram);
        foreach (var (name, image) in new[] { ("elf", new MultibootElf().Build()), ("aout", new MultibootAout().Build()) })
        {
            int loaded = 0;
            for (int len = 0; len <= image.Length; len++)
                if (Check(image[..len], $"{name} truncated to {len}", ram)) loaded++;
            Assert.True(loaded >= 1, name); // at least the whole image
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_garbage_with_and_without_headers_is_handled(int seed)
    {
        using var ram = new GuestRam(Ram);
        var rng = new Random(seed);
        int loaded = 0;
        for (int n = 0; n < 1000; n++)
        {
            var image = new byte[rng.Next(0, 10000)];
            rng.NextBytes(image);
            if (image.Length >= 12 && rng.Next(3) != 0)
            {
                // Plant a valid header, sometimes with address fields, sometimes after an ELF signature.
                int at = rng.Next(0, Math.Min(image.Length, 8192) - 11) & ~3;
                uint flags = rng.Next(2) == 0 ? (uint)rng.Next() : (uint)rng.Next(0, 8) | 0x10000u * (uint)rng.Next(2);
                MultibootElf.W32(image, at, 0x1BADB002);
                MultibootElf.W32(image, at + 4, flags);
                MultibootElf.W32(image, at + 8, unchecked(0u - 0x1BADB002u - flags));
                if (at >= 4 && rng.Next(2) == 0) { image[0] = 0x7F; image[1] = (byte)'E'; image[2] = (byte)'L'; image[3] = (byte)'F'; }
                if (at + 32 <= image.Length && rng.Next(2) == 0)
                {
                    // Plausible address fields near 1-4 MiB so some plans succeed and get applied.
                    uint load = (uint)rng.Next(0, 0x400000);
                    MultibootElf.W32(image, at + 12, load + (uint)rng.Next(0, at + 1));
                    MultibootElf.W32(image, at + 16, load);
                    MultibootElf.W32(image, at + 20, rng.Next(2) == 0 ? 0 : load + (uint)rng.Next(0, image.Length));
                    MultibootElf.W32(image, at + 24, rng.Next(2) == 0 ? 0 : load + (uint)rng.Next(0, 0x10000));
                    MultibootElf.W32(image, at + 28, load + (uint)rng.Next(0, 0x100));
                }
            }
            if (Check(image, $"seed {seed} case {n} ({image.Length} bytes)", ram)) loaded++;
        }
        Assert.True(loaded > 0, "no garbage case got past validation: the generator exercises only the header checks");
    }

    [Theory]
    [InlineData(10)]
    [InlineData(11)]
    public void Mutations_of_valid_images_are_handled(int seed)
    {
        using var ram = new GuestRam(Ram);
        var rng = new Random(seed);
        int loaded = 0;
        byte[][] bases = { new MultibootElf().Build(), new MultibootAout().Build(), new MultibootElf { TextVaddr = 0xC0100000, Entry = 0xC010000C }.Build() };
        for (int n = 0; n < 1500; n++)
        {
            byte[] image = (byte[])bases[n % bases.Length].Clone();
            int edits = rng.Next(1, 9);
            for (int e = 0; e < edits; e++)
            {
                // Bias edits toward the ELF header, program headers and Multiboot header, where the parsing is.
                int at = rng.Next(4) switch { 0 => rng.Next(0, 52), 1 => rng.Next(52, 116), 2 => rng.Next(0, 0x40), _ => rng.Next(0, image.Length) };
                at = Math.Min(at, image.Length - 1);
                if (rng.Next(3) == 0 && at + 4 <= image.Length)
                    MultibootElf.W32(image, at, rng.Next(4) switch { 0 => 0u, 1 => 0xFFFF_FFFFu, 2 => 0x8000_0000u, _ => (uint)rng.Next() });
                else
                    image[at] = (byte)rng.Next(256);
            }
            // Keep the Multiboot checksum valid half the time so the loader gets past the header check.
            if (rng.Next(2) == 0)
            {
                int hdr = n % bases.Length == 1 ? MultibootAout.HeaderOffset : MultibootElf.TextFileOffset;
                uint flags = BitConverter.ToUInt32(image, hdr + 4);
                MultibootElf.W32(image, hdr, 0x1BADB002);
                MultibootElf.W32(image, hdr + 8, unchecked(0u - 0x1BADB002u - flags));
            }
            if (Check(image, $"seed {seed} mutation {n}", ram)) loaded++;
        }
        Assert.True(loaded > 0, "no mutation got past validation");
    }
}
