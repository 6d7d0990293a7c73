using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

// Expectations from SDM Vol. 2A "MOVS", "CMPS", "SCAS", "LODS", "STOS", "OUTS" and Vol. 2B "REP/REPE/REPNE".
public unsafe class StringTests
{
    [Theory, InlineData(0), InlineData(1)]
    public void Rep_movsb_copies_forward(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.rep.movsb(), h =>
        {
            h.Poke(0x2000, [1, 2, 3, 4, 5, 6]); h[6] = 0x2000; h[7] = 0x3000; h[1] = 5;
        });
        h.AssertHalted();
        Assert.Equal(0x0504_0302_01UL, h.Peek(0x3000, 8));
        Assert.Equal(0x2005UL, h[6]);
        Assert.Equal(0x3005UL, h[7]);
        Assert.Equal(0UL, h[1]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rep_with_rcx_zero_does_nothing(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.rep.stosd(); a.repe.cmpsb(); }, h =>
        {
            h[0] = 0x1234_5678; h[7] = 0x3000; h[6] = 0x2000; h[1] = 0; h.Rflags = 2 | F.CF | F.SF;
        });
        h.AssertHalted();
        Assert.Equal(0UL, h.Peek(0x3000, 4));
        Assert.Equal(0x3000UL, h[7]);
        Assert.Equal(0x2000UL, h[6]);
        Assert.Equal(F.CF | F.SF, h.Status);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Df_set_copies_backward(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.std(); a.rep.movsd(); a.cld(); }, h =>
        {
            h.Poke(0x2000, 0x1111_1111, 4); h.Poke(0x2004, 0x2222_2222, 4); h.Poke(0x2008, 0x3333_3333, 4);
            h[6] = 0x2008; h[7] = 0x3008; h[1] = 3;
        });
        h.AssertHalted();
        Assert.Equal(0x1111_1111UL, h.Peek(0x3000, 4));
        Assert.Equal(0x2222_2222UL, h.Peek(0x3004, 4));
        Assert.Equal(0x3333_3333UL, h.Peek(0x3008, 4));
        Assert.Equal(0x1FFCUL, h[6]);
        Assert.Equal(0x2FFCUL, h[7]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Repe_cmpsb_stops_on_the_first_mismatch(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.repe.cmpsb(), h =>
        {
            h.Poke(0x2000, "abcXefgh"u8.ToArray()); h.Poke(0x3000, "abcYefgh"u8.ToArray());
            h[6] = 0x2000; h[7] = 0x3000; h[1] = 10;
        });
        h.AssertHalted();
        Assert.Equal(6UL, h[1]);
        Assert.Equal(0x2004UL, h[6]);
        Assert.Equal(0x3004UL, h[7]);
        // 'X' - 'Y' = -1: CF = 1, SF = 1, ZF = 0, AF = 1 (borrow from bit 4), PF: 0xFF even.
        Assert.Equal(F.CF | F.SF | F.AF | F.PF, h.Status);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Repne_scasb_finds_the_terminator(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => a.repne.scasb(), h =>
        {
            h.Poke(0x3000, "hello\0xx"u8.ToArray()); h[7] = 0x3000; h[1] = ulong.MaxValue; h[0] = 0xFFFF_FF00;
        });
        h.AssertHalted();
        Assert.Equal(0x3006UL, h[7]);
        Assert.Equal(unchecked((ulong)-7L), h[1]);
        Assert.Equal(F.ZF, h.Status & F.ZF);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Lods_and_stos_without_rep(int tier)
    {
        using var h = GroupTestHost.Run(tier, 64, a => { a.lodsw(); a.mov(rbx, rax); a.stosq(); }, h =>
        {
            h.Poke(0x2000, 0xBEEF, 2); h[0] = 0x1111_2222_3333_4444; h[6] = 0x2000; h[7] = 0x3000; h[1] = 7;
        });
        h.AssertHalted();
        Assert.Equal(0x1111_2222_3333_BEEFUL, h[3]);
        Assert.Equal(0x1111_2222_3333_BEEFUL, h.Peek(0x3000, 8));
        Assert.Equal(0x2002UL, h[6]);
        Assert.Equal(0x3008UL, h[7]);
        Assert.Equal(7UL, h[1]); // no REP: RCX untouched
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Address_size_16_in_32_bit_code_uses_si_di_cx(int tier)
    {
        // a16 rep movsb; jmp $+2; hlt
        using var h = GroupTestHost.RunBytes(tier, 32, [0x67, 0xF3, 0xA4, 0xEB, 0x00, 0xF4], h =>
        {
            h.Poke(0x2000, [7, 8, 9]); h[6] = 0xFFFF_2000; h[7] = 0xFFFF_3000; h[1] = 0xFFFF_0003;
        });
        h.AssertHalted();
        Assert.Equal(0x09_0807UL, h.Peek(0x3000, 4));
        Assert.Equal(0xFFFF_2003UL, h[6]);
        Assert.Equal(0xFFFF_3003UL, h[7]);
        Assert.Equal(0xFFFF_0000UL, h[1]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Address_size_32_in_64_bit_code_uses_and_zero_extends_esi_edi_ecx(int tier)
    {
        using var h = GroupTestHost.RunBytes(tier, 64, [0x67, 0xF3, 0xA4, 0xEB, 0x00, 0xF4], h =>
        {
            h.Poke(0x2000, [7, 8]); h[6] = 0xAAAA_0000_0000_2000; h[7] = 0xBBBB_0000_0000_3000; h[1] = 0xCCCC_0000_0000_0002;
        });
        h.AssertHalted();
        Assert.Equal(0x0807UL, h.Peek(0x3000, 2));
        Assert.Equal(0x2002UL, h[6]);
        Assert.Equal(0x3002UL, h[7]);
        Assert.Equal(0UL, h[1]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Segment_override_applies_to_the_source_and_es_to_the_destination(int tier)
    {
        // fs rep movsb; jmp $+2; hlt
        using var h = GroupTestHost.RunBytes(tier, 32, [0x64, 0xF3, 0xA4, 0xEB, 0x00, 0xF4], h =>
        {
            h.Cpu.State->Fs.Base = 0x1000; h.Cpu.State->Es.Base = 0x100;
            h.Poke(0x2000, [0xA1, 0xA2, 0xA3, 0xA4]); h[6] = 0x1000; h[7] = 0x2F00; h[1] = 4;
        });
        h.AssertHalted();
        Assert.Equal(0xA4A3_A2A1UL, h.Peek(0x3000, 4));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Real_mode_rep_stosw(int tier)
    {
        using var h = GroupTestHost.RunBytes(tier, 16, [0xF3, 0xAB, 0xEB, 0x00, 0xF4], h =>
        {
            h[0] = 0xABCD; h[7] = 0x3000; h[1] = 3;
        });
        h.AssertHalted();
        Assert.Equal(0xABCD_ABCD_ABCDUL, h.Peek(0x3000, 8));
        Assert.Equal(0x3006UL, h[7]);
        Assert.Equal(0UL, h[1]);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void A_fault_in_iteration_n_keeps_the_state_after_iteration_n_minus_1(int tier)
    {
        var bus = new TestBus { FaultOnMmioWrite = true };
        using var h = GroupTestHost.Run(tier, 64, a => a.rep.movsb(), h =>
        {
            h.Poke(0x2000, [1, 2, 3, 4]); h[6] = 0x2000; h[7] = 0xF_FFFE; h[1] = 4;
        }, bus, warmup: h => { h[6] = 0x2000; h[7] = 0x3000; h[1] = 4; });
        // Iterations 1 and 2 fill the last two bytes of RAM; the third store reaches the (faulting) bus.
        h.AssertFault(Vector.PF, GroupTestHost.Code);
        Assert.Equal(2UL, h[1]);
        Assert.Equal(0x2002UL, h[6]);
        Assert.Equal(0x10_0000UL, h[7]);
        Assert.Equal(0x0201UL, h.Peek(0xF_FFFE, 2));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rep_stops_for_an_exit_request_and_resumes(int tier)
    {
        var bus = new TestBus();
        using var h = GroupTestHost.Run(tier, 64, a => a.rep.outsb(), h =>
        {
            bus.Cpu = h.Cpu; bus.PortWrites = 0; bus.RequestExitAt = 5000;
            h[2] = 0x80; h[6] = 0x2000; h[1] = 20000;
        }, bus, warmup: h => { h[2] = 0x80; h[6] = 0x2000; h[1] = 1; });
        // The loop polls every 4096 iterations: the request made in iteration 5000 is seen after 8192.
        Assert.Equal(ExitReason.ExitRequested, h.Exit);
        Assert.Equal(GroupTestHost.Code, h.Rip);
        Assert.Equal(20000UL - 8192, h[1]);
        Assert.Equal(0x2000UL + 8192, h[6]);
        Assert.Equal(8192, bus.PortWrites);
        Assert.Equal(ExitReason.Hlt, h.Cpu.Run());
        Assert.Equal(20000, bus.PortWrites);
        Assert.Equal(0UL, h[1]);
    }

    sealed class TestBus : IGuestBus
    {
        public bool FaultOnMmioWrite;
        public CpuCore? Cpu;
        public int PortWrites, RequestExitAt = -1;

        public ulong MmioRead(ulong physical, int size) => 0;

        public void MmioWrite(ulong physical, int size, ulong value)
        {
            if (FaultOnMmioWrite) throw new CpuFault(Vector.PF, 2);
        }

        public uint PortIn(ushort port, int size) => 0;

        public void PortOut(ushort port, int size, uint value)
        {
            if (++PortWrites == RequestExitAt) Cpu!.RequestExit();
        }
    }
}
