using DynaSmp.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Programs;

/// <summary>Programs that need instruction groups still being implemented elsewhere (string instructions,
/// MUL/DIV). They are expected to fail with #UD until those groups are merged.</summary>
public class StringProgramTests
{
    public static TheoryData<int> All => Tiers.All;

    [Theory, MemberData(nameof(All))]
    public void Rep_movsb_copies_a_buffer_in_a_loop(int tier)
    {
        // SDM MOVS/REP: copies RCX bytes from [RSI] to [RDI], RSI/RDI advance (DF = 0), RCX ends at 0.
        const ulong src = 0x100000, dst = 0x110000;
        using var g = Guest.Flat64(tier, a =>
        {
            var loop = a.CreateLabel();
            a.cld();
            a.mov(ebx, 20); // copy the 1000-byte buffer 20 times, shifting the destination by 1 each time
            a.mov(r8d, (uint)dst);
            a.Label(ref loop);
            a.mov(esi, (uint)src);
            a.mov(rdi, r8);
            a.mov(ecx, 1000);
            a.rep.movsb();
            a.inc(r8);
            a.dec(ebx);
            a.jnz(loop);
            a.hlt();
        });
        for (int k = 0; k < 1000; k++) g.Ram.Span(src + (ulong)k, 1)[0] = (byte)(k * 7 + 3);
        g.RunToHlt();
        Assert.Equal(0UL, g.Reg(R.Cx));
        Assert.Equal(src + 1000, g.Reg(R.Si));
        Assert.Equal(dst + 19 + 1000, g.Reg(R.Di));
        // The last copy started at dst + 19; bytes below it hold the first byte of each earlier copy.
        for (int k = 0; k < 1000; k++) Assert.Equal((ulong)(byte)(k * 7 + 3), g.Read(dst + 19 + (ulong)k, 1));
        for (int k = 0; k < 19; k++) Assert.Equal(3UL, g.Read(dst + (ulong)k, 1));
    }

    [Theory, MemberData(nameof(All))]
    public void Rep_stosq_fills_memory(int tier)
    {
        const ulong dst = 0x100000;
        using var g = Guest.Flat64(tier, a =>
        {
            a.cld();
            a.mov(edi, (uint)dst + 8);
            a.mov(rax, 0x0123_4567_89AB_CDEFUL);
            a.mov(ecx, 4096);
            a.rep.stosq();
            a.hlt();
        });
        g.WriteU64(dst, 0x5555);
        g.WriteU64(dst + 8 + 4096 * 8, 0x6666);
        g.RunToHlt();
        Assert.Equal(0UL, g.Reg(R.Cx));
        Assert.Equal(dst + 8 + 4096 * 8, g.Reg(R.Di));
        for (ulong k = 0; k < 4096; k += 255) Assert.Equal(0x0123_4567_89AB_CDEFUL, g.Read(dst + 8 + k * 8, 8));
        Assert.Equal(0x0123_4567_89AB_CDEFUL, g.Read(dst + 8 * 4096, 8));
        Assert.Equal(0x5555UL, g.Read(dst, 8));               // untouched below
        Assert.Equal(0x6666UL, g.Read(dst + 8 + 4096 * 8, 8)); // untouched above
    }

    [Theory, MemberData(nameof(All))]
    public void Repne_scasb_strlen(int tier)
    {
        // strlen: RCX = -1; REPNE SCASB stops after the byte equal to AL (0); length = -RCX - 2 = NOT RCX - 1.
        const ulong str = 0x100000;
        const int len = 3000;
        using var g = Guest.Flat64(tier, a =>
        {
            a.cld();
            a.mov(edi, (uint)str);
            a.xor(eax, eax);
            a.mov(rcx, -1);
            a.repne.scasb();
            a.not(rcx);
            a.dec(rcx);
            a.hlt();
        });
        for (int k = 0; k < len; k++) g.Ram.Span(str + (ulong)k, 1)[0] = (byte)('a' + k % 26);
        g.RunToHlt();
        Assert.Equal((ulong)len, g.Reg(R.Cx));
        Assert.Equal(str + len + 1, g.Reg(R.Di)); // one past the terminator
    }

    [Theory, MemberData(nameof(All))]
    public void Division_by_zero_raises_DE_at_the_div(int tier)
    {
        // SDM DIV: a zero divisor raises #DE (vector 0), a fault: RIP stays at the DIV, RAX/RDX unchanged.
        using var g = Guest.Flat64(tier, a =>
        {
            a.mov(eax, 100);  // 0x1000, 5 bytes
            a.xor(edx, edx);  // 0x1005, 2 bytes
            a.xor(ecx, ecx);  // 0x1007, 2 bytes
            a.div(ecx);       // 0x1009
            a.hlt();
        });
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(0, g.Cpu.ExitVector);
        Assert.Equal(0x1009UL, g.Rip);
        Assert.Equal(100UL, g.Reg(R.Ax));
    }
}
