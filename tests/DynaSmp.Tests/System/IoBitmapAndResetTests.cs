using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>TSS I/O permission bitmap (SDM Vol. 1 19.5.2) and RESET/INIT/SIPI states (SDM Vol. 3A Table 10-1).</summary>
public unsafe class IoBitmapAndResetTests
{
    const ulong Tss = 0x20000;
    const ushort BitmapOffset = 0x68;

    /// <summary>A 64-bit TSS whose bitmap covers ports 0-0x3FF (128 bytes); port 0x61 and 0x68 denied.</summary>
    static void SetUpTss(SysMachine m, uint limit = BitmapOffset + 128 + 1)
    {
        BitConverter.TryWriteBytes(m.Mem(Tss + 0x66, 2), BitmapOffset);
        var bitmap = m.Mem(Tss + BitmapOffset, 129);
        bitmap.Clear();
        bitmap[0x61 / 8] |= 1 << (0x61 % 8);
        bitmap[0x68 / 8] |= 1 << (0x68 % 8);
        bitmap[128] = 0xFF;
        m.S->Tr = new SegmentCache { Selector = 0x40, Base = Tss, Limit = limit, Attributes = 0x8B };
    }

    sealed class RecordingBus : IGuestBus
    {
        public readonly List<(ushort Port, int Size)> Ins = new();
        public ulong MmioRead(ulong physical, int size) => 0;
        public void MmioWrite(ulong physical, int size, ulong value) { }
        public uint PortIn(ushort port, int size) { Ins.Add((port, size)); return 0x5A; }
        public void PortOut(ushort port, int size, uint value) { }
    }

    [Theory]
    [InlineData(0, 0x60, 1, true)]
    [InlineData(0, 0x61, 1, false)]
    [InlineData(0, 0x60, 2, false)] // 0x60 allowed, 0x61 denied: a 2-byte access needs both
    [InlineData(0, 0x66, 2, true)]
    [InlineData(0, 0x67, 1, true)]
    [InlineData(0, 0x67, 2, false)] // straddles bitmap bytes 0x0C (bit 7, allowed) and 0x0D (bit 0, denied)
    [InlineData(0, 0x3FC, 4, true)]
    [InlineData(0, 0x400, 1, false)] // bitmap byte 0x80 is the 0xFF terminator
    [InlineData(1, 0x60, 1, true)]
    [InlineData(1, 0x67, 2, false)]
    public void Cpl3_iopl0_consults_the_bitmap(int tier, int port, int size, bool allowed)
    {
        var bus = new RecordingBus();
        using var m = new SysMachine(tier, a =>
        {
            if (size == 1) a.@in(al, dx);
            else if (size == 2) a.@in(ax, dx);
            else a.@in(eax, dx);
        }, bus: bus);
        SetUpTss(m);
        m.Gpr(2) = (ulong)port;
        m.Ring3();
        if (allowed)
        {
            m.RunToHlt();
            Assert.Equal([((ushort)port, size)], bus.Ins);
        }
        else
        {
            m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
            Assert.Empty(bus.Ins);
        }
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Bitmap_beyond_the_tss_limit_denies(int tier)
    {
        using var m = new SysMachine(tier, a => a.@in(al, 0x60));
        SetUpTss(m, limit: BitmapOffset + 0x60 / 8); // the second bitmap byte read is past the limit
        m.Ring3();
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        m.Reset();
        SetUpTss(m, limit: BitmapOffset + 0x60 / 8 + 1);
        m.Ring3();
        m.RunToHlt();
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cpl0_or_iopl3_skips_the_bitmap(int tier)
    {
        using var m = new SysMachine(tier, a => a.@out(0x61, al));
        SetUpTss(m);
        m.RunToHlt();
        m.Reset();
        SetUpTss(m);
        m.Ring3();
        m.S->Rflags |= 3 << 12; // IOPL 3
        m.RunToHlt();
    }

    [Fact]
    public void Reset_state_matches_sdm_table_10_1()
    {
        using var m = new SysMachine(0, _ => { });
        var s = m.S;
        s->Cr0 |= Cr0.PG; s->Cr4 = Cr4.PAE; s->Cr3 = 0x1000; s->Cr2 = 5; s->Cr8 = 3; s->Dr[0] = 9;
        s->Xmm[0] = 1; s->Mxcsr = 0; s->Pat = 0; s->Lstar = 0x1234; s->ApicBase = 0xFEE0_0900;
        s->NmiBlocked = 1; s->InterruptShadow = 1; s->HaltRequested = 1;
        for (int k = 0; k < 16; k++) s->Gpr[k] = 0xAA;
        m.Cpu.Reset(initEvent: false);
        AssertArchitecturalInitState(m);
        Assert.Equal(0x6000_0010UL, s->Cr0);
        Assert.Equal(0x40, s->FpuControl);  // x87 FPU control word after power-up/reset
        Assert.Equal(0, s->FpuStatus);
        Assert.Equal(0xFF, s->FpuTag);      // tag word 5555h: every register holds +0.0
        Assert.Equal(0UL, s->Xmm[0]);
        Assert.Equal(0x1F80u, s->Mxcsr);
        Assert.Equal(0x0007_0406_0007_0406UL, s->Pat);
        Assert.Equal(0UL, s->Lstar);
        Assert.Equal(0xFEE0_0900UL, s->ApicBase); // enabled at FEE00000h, BSP flag kept (the machine's)
        Assert.InRange(m.Cpu.ReadTsc(), 0UL, (ulong)System.Diagnostics.Stopwatch.Frequency * 10); // TSC restarts at 0
    }

    [Fact]
    public void Init_keeps_cd_nw_fpu_sse_msrs_and_tsc()
    {
        using var m = new SysMachine(0, _ => { });
        var s = m.S;
        s->Cr0 = Cr0.PE | Cr0.CD | Cr0.NW | Cr0.PG | Cr0.ET;
        s->Efer = Efer.LME | Efer.LMA | Efer.SCE;
        s->Xmm[5] = 0x55; s->Mxcsr = 0x1F00; s->FpuControl = 0x27F; s->FpuTag = 0x3;
        s->Pat = 0x0606_0606_0606_0606; s->Lstar = 0xFFFF_FFFF_8100_0000; s->SysenterEip = 0x77;
        s->KernelGsBase = 0x99; s->MtrrDefType = 0xC06; s->MiscEnable = 0x1801; s->ApicBase = 0xFEE0_0800;
        s->TscOffset = 1UL << 60;
        m.Cpu.Reset(initEvent: true);
        AssertArchitecturalInitState(m);
        Assert.Equal(Cr0.CD | Cr0.NW | Cr0.ET, s->Cr0); // INIT: CD and NW unchanged, ET = 1, the rest 0
        Assert.Equal(0x55UL, s->Xmm[5]);
        Assert.Equal(0x1F00u, s->Mxcsr);
        Assert.Equal(0x27F, s->FpuControl);
        Assert.Equal(3, s->FpuTag);
        Assert.Equal(0x0606_0606_0606_0606UL, s->Pat);
        Assert.Equal(0xFFFF_FFFF_8100_0000UL, s->Lstar);
        Assert.Equal(0x77UL, s->SysenterEip);
        Assert.Equal(0x99UL, s->KernelGsBase);
        Assert.Equal(0xC06UL, s->MtrrDefType);
        Assert.Equal(0x1801UL, s->MiscEnable);
        Assert.Equal(0xFEE0_0800UL, s->ApicBase);
        Assert.Equal(1UL << 60, s->TscOffset);
    }

    static void AssertArchitecturalInitState(SysMachine m)
    {
        var s = m.S;
        Assert.Equal(0xFFF0UL, s->Rip);
        Assert.Equal((ushort)0xF000, s->Cs.Selector);
        Assert.Equal(0xFFFF_0000UL, s->Cs.Base);
        Assert.Equal(0xFFFFu, s->Cs.Limit);
        Assert.Equal(0x9Bu, s->Cs.Attributes);
        foreach (var seg in new[] { s->Ds, s->Es, s->Ss, s->Fs, s->Gs })
        {
            Assert.Equal((ushort)0, seg.Selector);
            Assert.Equal(0UL, seg.Base);
            Assert.Equal(0xFFFFu, seg.Limit);
            Assert.Equal(0x93u, seg.Attributes);
        }
        Assert.Equal(0x2UL, Flags.Get(s));
        Assert.Equal(CpuidModel.Signature, s->Gpr[2]); // EDX = processor signature
        for (int k = 0; k < 16; k++) if (k != 2) Assert.Equal(0UL, s->Gpr[k]);
        Assert.Equal(0UL, s->Cr2); Assert.Equal(0UL, s->Cr3); Assert.Equal(0UL, s->Cr4); Assert.Equal(0UL, s->Cr8);
        Assert.Equal(0UL, s->Efer);
        Assert.Equal(0UL, s->GdtrBase); Assert.Equal(0xFFFFu, s->GdtrLimit);
        Assert.Equal(0UL, s->IdtrBase); Assert.Equal(0xFFFFu, s->IdtrLimit);
        Assert.Equal((ushort)0, s->Ldtr.Selector); Assert.Equal(0xFFFFu, s->Ldtr.Limit); Assert.Equal(0x82u, s->Ldtr.Attributes);
        Assert.Equal((ushort)0, s->Tr.Selector); Assert.Equal(0xFFFFu, s->Tr.Limit); Assert.Equal(0x8Bu, s->Tr.Attributes);
        for (int k = 0; k < 4; k++) Assert.Equal(0UL, s->Dr[k]);
        Assert.Equal(0xFFFF_0FF0UL, s->Dr[6]);
        Assert.Equal(0x400UL, s->Dr[7]);
        Assert.Equal(0u, m.Cpu.ExceptionIntercept);
        Assert.Equal(0, s->NmiBlocked); Assert.Equal(0, s->InterruptShadow); Assert.Equal(0, s->HaltRequested);
        Assert.Equal(ExecMode.Code16 | ExecMode.Real, s->Mode);
        Assert.Equal(0, s->Cpl);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Sipi_starts_real_mode_at_vector_page(int tier)
    {
        using var m = new SysMachine(tier, a => { a.mov(eax, 0); }, bitness: 64);
        // Real-mode code at 9A000h (vector 9Ah): mov ax, cs; mov bx, 1234h; hlt.
        m.Ram.Write(0x9A000, [0x8C, 0xC8, 0xBB, 0x34, 0x12, 0xF4]);
        m.Cpu.Reset(initEvent: true);
        m.Cpu.StartAtSipi(0x9A);
        Assert.Equal((ushort)0x9A00, m.S->Cs.Selector);
        Assert.Equal(0x9A000UL, m.S->Cs.Base);
        Assert.Equal(0xFFFFu, m.S->Cs.Limit);
        Assert.Equal(0UL, m.S->Rip);
        Assert.Equal(CpuidModel.Signature, m.S->Gpr[2]);
        Assert.Equal(ExitReason.Hlt, m.Cpu.Run());
        Assert.Equal(0x9A00UL, m.Gpr(0));
        Assert.Equal(0x1234UL, m.Gpr(3));
        Assert.Equal(6UL, m.S->Rip);
    }
}
