using BitOperations = System.Numerics.BitOperations;
using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SseInsns;

/// <summary>SSE enable checks (CR0.EM, CR4.OSFXSR, CR0.TS) and small gcc-style SSE2 programs.</summary>
public sealed unsafe class SseSystemAndProgramTests
{
    const ulong D = SseMachine.DataAddr;
    const ulong OsFxsr = 1 << 9;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Flat_modes_enable_sse_through_cr4_osfxsr(int tier)
    {
        using var m = new SseMachine(tier, a => a.pxor(xmm0, xmm0));
        m.Reset();
        Assert.NotEqual(0UL, m.S->Cr4 & OsFxsr);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Osfxsr_clear_is_UD_and_changes_nothing(int tier)
    {
        // SDM Vol. 1 13.1.3 / Vol. 2 class-4 exceptions: CR4.OSFXSR=0 -> #UD for SSE instructions.
        using var m = new SseMachine(tier, a => { a.nop(); a.paddd(xmm1, xmm2); });
        m.Reset();
        m.S->Cr4 &= ~OsFxsr;
        var v = Vector128.Create(1UL, 2UL);
        m.SetXmm(1, v);
        m.SetXmm(2, v);
        Assert.Equal(ExitReason.Exception, m.Cpu.Run());
        Assert.Equal(Vector.UD, m.Cpu.ExitVector);
        Assert.Equal(SseMachine.CodeAddr + 1, m.S->Rip);
        Assert.Equal(v, m.GetXmm(1));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Cr0_em_is_UD_even_with_ts_set(int tier)
    {
        // EM=1 -> #UD takes priority over TS=1 -> #NM (the #UD conditions are listed first in the class tables).
        using var m = new SseMachine(tier, a => a.movdqa(xmm1, xmm2));
        m.Reset();
        m.S->Cr0 |= Cr0.EM | Cr0.TS;
        Assert.Equal(ExitReason.Exception, m.Cpu.Run());
        Assert.Equal(Vector.UD, m.Cpu.ExitVector);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Cr0_ts_is_NM_before_any_memory_access(int tier)
    {
        // CR0.TS=1 -> #NM (SDM Vol. 3 2.5, 13.4); the misaligned operand would otherwise be #GP.
        using var m = new SseMachine(tier, a => { a.nop(); a.movdqa(__xmmword_ptr[rax], xmm2); });
        m.Reset();
        m.S->Cr0 |= Cr0.TS;
        m.Gpr(0) = D + 1;
        Assert.Equal(ExitReason.Exception, m.Cpu.Run());
        Assert.Equal(Vector.NM, m.Cpu.ExitVector);
        Assert.Equal(SseMachine.CodeAddr + 1, m.S->Rip);
        Assert.True(m.Mem(D, 32).IndexOfAnyExcept((byte)0) < 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Movnti_is_not_subject_to_cr0_ts(int tier)
    {
        // MOVNTI is a general-register store: its exceptions list no CR0.TS/EM/OSFXSR condition.
        using var m = new SseMachine(tier, a => a.movnti(__dword_ptr[rax], ecx));
        m.Reset();
        m.S->Cr0 |= Cr0.TS;
        m.S->Cr4 &= ~OsFxsr;
        m.Gpr(0) = D;
        m.Gpr(1) = 0x12345678;
        Assert.Equal(ExitReason.Hlt, m.Cpu.Run());
        Assert.Equal(0x12345678u, BitConverter.ToUInt32(m.Mem(D, 4)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Mmx_register_forms_are_UD(int tier)
    {
        using var m = new SseMachine(tier, a => a.pxor(mm0, mm1));
        m.RunExpectFault(Vector.UD, SseMachine.CodeAddr);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Pextrw_memory_form_of_sse41_stores_the_word(int tier)
    {
        // 66 0F 3A 15 /r ib (SSE4.1): word imm8[2:0] of the XMM register to m16, no alignment requirement.
        using var m = new SseMachine(tier, a => a.AddInstruction(Instruction.Create(Code.Pextrw_r32m16_xmm_imm8, new MemoryOperand(Register.RAX), Register.XMM1, 9)));
        m.Gpr(0) = D + 1;
        m.SetXmm(1, Vector128.Create(0x4444_3333_2222_1111UL, 0x8888_7777_6666_5555UL));
        m.Mem(D, 4).Fill(0xEE);
        m.RunToHlt();
        Assert.Equal(new byte[] { 0xEE, 0x22, 0x22, 0xEE }, m.Mem(D, 4).ToArray()); // imm8 9 selects word 1
    }

    /// <summary>The inner loop gcc/glibc use for strlen: compare 16 bytes against zero, take the byte mask.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Strlen_loop_finds_the_terminator(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            var loop = a.CreateLabel();
            a.mov(rax, rdi);
            a.pxor(xmm0, xmm0);
            a.Label(ref loop);
            a.movdqa(xmm1, __xmmword_ptr[rax]);
            a.pcmpeqb(xmm1, xmm0);
            a.pmovmskb(edx, xmm1);
            a.add(rax, 16);
            a.test(edx, edx);
            a.jz(loop);
        });
        var rng = new Random(42);
        foreach (int len in new[] { 0, 1, 15, 16, 17, 31, 100, 1000 })
        {
            var bytes = m.Mem(D, 2048);
            for (int k = 0; k < bytes.Length; k++) bytes[k] = (byte)rng.Next(1, 256);
            bytes[len] = 0;
            if (len + 3 < bytes.Length) bytes[len + 3] = 0; // a later zero in the same chunk also sets its bit
            m.Gpr(7) = D;
            m.RunToHlt();
            ulong chunk = m.Gpr(0) - 16;
            uint mask = (uint)m.Gpr(2);
            Assert.Equal(D + (ulong)(len & ~15), chunk);
            uint expected = 0;
            for (int k = 0; k < 16; k++) if (bytes[(int)(chunk - D) + k] == 0) expected |= 1u << k;
            Assert.Equal(expected, mask);
            Assert.Equal(len, (int)(chunk - D) + BitOperations.TrailingZeroCount(mask));
        }
    }

    /// <summary>memset's broadcast of one byte to 16 and unaligned 16-byte stores.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Memset_broadcast_and_unaligned_stores(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            var loop = a.CreateLabel();
            a.movzx(eax, sil);
            a.movd(xmm0, eax);
            a.punpcklbw(xmm0, xmm0);
            a.punpcklwd(xmm0, xmm0);
            a.pshufd(xmm0, xmm0, 0);
            a.Label(ref loop);
            a.movdqu(__xmmword_ptr[rdi], xmm0);
            a.add(rdi, 16);
            a.dec(rcx);
            a.jnz(loop);
        });
        foreach (ulong start in new ulong[] { D + 3, D + 0xFF9, D + 0x2000 })
        {
            m.Mem(D, 0x3000).Fill(0x11);
            m.SetXmm(0, Vector128.Create(ulong.MaxValue, ulong.MaxValue));
            m.Gpr(6) = 0xFFFF_FF00_0000_00A5UL; // only SIL matters
            m.Gpr(7) = start;
            m.Gpr(1) = 10;
            m.RunToHlt();
            var all = m.Mem(D, 0x3000);
            int s0 = (int)(start - D);
            for (int k = 0; k < all.Length; k++)
                Assert.Equal(k >= s0 && k < s0 + 160 ? 0xA5 : 0x11, all[k]);
            Assert.Equal(Vector128.Create(0xA5A5_A5A5_A5A5_A5A5UL, 0xA5A5_A5A5_A5A5_A5A5UL), m.GetXmm(0));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Sse2_works_in_flat_32_bit_mode(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            a.movd(xmm0, eax);
            a.pshufd(xmm0, xmm0, 0);
            a.movdqu(xmm1, __xmmword_ptr[ebx]);
            a.paddd(xmm1, xmm0);
            a.movdqa(__xmmword_ptr[ebx + 16], xmm1);
            a.pmovmskb(ecx, xmm1);
        }, bitness: 32);
        m.Gpr(0) = 0x8000_0001;
        m.Gpr(3) = D;
        for (int k = 0; k < 4; k++) BitConverter.TryWriteBytes(m.Mem(D + 4 * (ulong)k, 4), (uint)k);
        m.RunToHlt();
        for (int k = 0; k < 4; k++) Assert.Equal(0x8000_0001u + (uint)k, BitConverter.ToUInt32(m.Mem(D + 16 + 4 * (ulong)k, 4)));
        Assert.Equal(0x8888UL, m.Gpr(1)); // the sign byte of each dword is its top byte
    }
}
