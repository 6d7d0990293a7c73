using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Programs;

/// <summary>PAUSE-loop exiting (KVM's PLE): a run of PAUSEs that spins past the window gives the host CPU away, in
/// both tiers; a lone PAUSE does not.</summary>
public class PauseLoopExitingTests
{
    public static TheoryData<int> All => Tiers.All;

    [Theory, MemberData(nameof(All))]
    public void A_long_pause_loop_yields_and_a_lone_pause_does_not(int tier)
    {
        // 200,000 turns of PAUSE; DEC; JNZ take far longer than the 2 us window in either tier.
        using var spin = Guest.Flat64(tier, a =>
        {
            var loop = a.CreateLabel();
            a.mov(ecx, 200_000);
            a.Label(ref loop);
            a.pause();
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        spin.RunToHlt();
        Assert.Equal(200_000, spin.Cpu.PauseCount);
        Assert.True(spin.Cpu.PleYields > 0, "a 200,000-PAUSE spin never yielded");
        Assert.True(spin.Cpu.PleYields < 200_000, "every PAUSE yielded: the window is not applied");

        using var once = Guest.Flat64(tier, a => { a.pause(); a.hlt(); });
        once.RunToHlt();
        Assert.Equal(1, once.Cpu.PauseCount);
        Assert.Equal(0, once.Cpu.PleYields);
    }
}
