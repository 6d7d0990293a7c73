using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>CR0/CR3/CR4/CR8/EFER/DR rules (SDM Vol. 3A 2.5, 10.8.5, MOV CR / MOV DR pages). Transitions into
/// paging are checked by calling the interpreter's MOV-to-CR semantics directly: this branch's MMU does not
/// translate with CR0.PG = 1, so no instruction may be fetched afterwards.</summary>
public unsafe class ControlRegisterTests
{
    static CpuFault Gp(Action a)
    {
        var f = Assert.Throws<CpuFault>(a);
        Assert.Equal(Vector.GP, f.Vector);
        Assert.Equal(0UL, f.ErrorCode);
        return f;
    }

    static SysMachine Legacy32() => new(0, _ => { }, bitness: 32);

    [Fact]
    public void Cr0_pg_without_pe_and_nw_without_cd_are_gp()
    {
        using var m = Legacy32();
        ulong before = m.S->Cr0;
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PG | Cr0.ET));
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE | Cr0.NW));
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, (1UL << 32) | Cr0.PE));
        Assert.Equal(before, m.S->Cr0);
        Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE | Cr0.NW | Cr0.CD); // NW with CD is valid
        Assert.Equal(Cr0.PE | Cr0.NW | Cr0.CD | Cr0.ET, m.S->Cr0); // ET is hardwired to 1
    }

    [Fact]
    public void Long_mode_activation_sequence_sets_lma()
    {
        using var m = Legacy32();
        // CR0.PG with EFER.LME = 1 and CR4.PAE = 0 is #GP.
        Interp.WriteMsr(m.Cpu, Msr.Efer, Efer.LME);
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE | Cr0.PG));
        Assert.Equal(Efer.LME, m.S->Efer);
        // With CR4.PAE: LMA becomes 1; CS.L = 0 so the CPU is in compatibility mode (32-bit code).
        Interp.WriteControlRegister(m.Cpu, Register.CR4, Cr4.PAE);
        Interp.WriteControlRegister(m.Cpu, Register.CR3, 0x9000);
        Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE | Cr0.PG);
        Assert.Equal(Efer.LME | Efer.LMA, m.S->Efer);
        Assert.Equal(ExecMode.Code32, m.S->Mode & ExecMode.SizeMask);
        // While LMA = 1: clearing CR4.PAE is #GP, changing EFER.LME while paging is #GP.
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR4, 0));
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.Efer, 0));
        Assert.Equal(Cr4.PAE, m.S->Cr4);
        Assert.Equal(Efer.LME | Efer.LMA, m.S->Efer);
        // A far jump to a 64-bit code segment then gives 64-bit mode.
        m.S->Cs.Attributes = (m.S->Cs.Attributes & ~SegmentCache.DefaultBig) | SegmentCache.Long;
        m.Cpu.UpdateMode();
        Assert.Equal(ExecMode.Code64, m.S->Mode & ExecMode.SizeMask);
        // Clearing PG in 64-bit mode is #GP; from compatibility mode it deactivates IA-32e mode.
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE));
        m.S->Cs.Attributes = (m.S->Cs.Attributes & ~SegmentCache.Long) | SegmentCache.DefaultBig;
        m.Cpu.UpdateMode();
        Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE);
        Assert.Equal(Efer.LME, m.S->Efer);
        Assert.Equal(Cr0.PE | Cr0.ET, m.S->Cr0);
    }

    [Fact]
    public void Enabling_paging_with_lme_from_a_long_code_segment_is_gp()
    {
        using var m = Legacy32();
        Interp.WriteMsr(m.Cpu, Msr.Efer, Efer.LME);
        Interp.WriteControlRegister(m.Cpu, Register.CR4, Cr4.PAE);
        m.S->Cs.Attributes |= SegmentCache.Long;
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR0, Cr0.PE | Cr0.PG));
        Assert.Equal(0UL, m.S->Cr0 & Cr0.PG);
    }

    [Fact]
    public void Efer_reserved_bits_and_lma_write()
    {
        using var m = Legacy32();
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.Efer, 1UL << 1));
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.Efer, 1UL << 12));
        Interp.WriteMsr(m.Cpu, Msr.Efer, Efer.SCE | Efer.NXE | Efer.LMA); // LMA is the processor's: ignored
        Assert.Equal(Efer.SCE | Efer.NXE, Interp.ReadMsr(m.Cpu, Msr.Efer));
    }

    [Fact]
    public void Cr4_reserved_and_unsupported_bits_are_gp()
    {
        using var m = Legacy32();
        ulong before = m.S->Cr4;
        foreach (ulong bit in new[] { Cr4.VME, Cr4.DE, Cr4.VMXE, Cr4.PCIDE, Cr4.OSXSAVE, Cr4.SMEP, 1UL << 15, 1UL << 63 })
            Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR4, before | bit));
        Assert.Equal(before, m.S->Cr4);
        Interp.WriteControlRegister(m.Cpu, Register.CR4, Cr4.Supported);
        Assert.Equal(Cr4.Supported, m.S->Cr4);
    }

    [Fact]
    public void Cr3_reserved_bits_in_ia32e_mode()
    {
        using var m = new SysMachine(0, _ => { }); // LMA = 1
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR3, 1UL << 40)); // above MAXPHYADDR (40)
        Gp(() => Interp.WriteControlRegister(m.Cpu, Register.CR3, 1UL << 63)); // no PCID
        Interp.WriteControlRegister(m.Cpu, Register.CR3, 0xFF_FFFF_F000);
        Assert.Equal(0xFF_FFFF_F000UL, m.S->Cr3);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cr8_reserved_bits_are_gp(int tier)
    {
        using var m = new SysMachine(tier, a => a.mov(cr8, rax));
        m.Gpr(0) = 0x10;
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        Assert.Equal(0UL, m.S->Cr8);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cr0_reserved_bits_are_ignored_and_cr4_write_from_guest(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(cr0, rax);
            a.mov(cr4, rbx);
            a.mov(rcx, cr0);
            a.mov(rdx, cr4);
        });
        m.Gpr(0) = Cr0.PE | Cr0.NE | Cr0.MP | (1UL << 6) | (1UL << 17); // bits 6 and 17 are reserved
        m.S->Cr4 = Cr4.PAE | Cr4.OSFXSR;
        m.Gpr(3) = Cr4.PAE | Cr4.OSFXSR | Cr4.PGE | Cr4.OSXMMEXCPT;
        m.RunToHlt();
        Assert.Equal(Cr0.PE | Cr0.NE | Cr0.MP | Cr0.ET, m.Gpr(1));
        Assert.Equal(Cr4.PAE | Cr4.OSFXSR | Cr4.PGE | Cr4.OSXMMEXCPT, m.Gpr(2));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cr4_clearing_pae_while_lma_is_gp_from_guest(int tier)
    {
        using var m = new SysMachine(tier, a => a.mov(cr4, rax));
        m.S->Cr4 = Cr4.PAE | Cr4.OSFXSR;
        m.Gpr(0) = Cr4.OSFXSR;
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        Assert.Equal(Cr4.PAE | Cr4.OSFXSR, m.S->Cr4);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Lmsw_loads_low_bits_but_cannot_clear_pe(int tier)
    {
        using var m = new SysMachine(tier, a => { a.lmsw(ax); a.mov(ebx, cr0); }, bitness: 32);
        m.Gpr(0) = 0xFFF0 | Cr0.MP | Cr0.TS; // PE = 0 in the source; only bits 3:0 are loaded
        m.RunToHlt();
        Assert.Equal(Cr0.PE | Cr0.MP | Cr0.TS | Cr0.ET | Cr0.NE, m.Gpr(3));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Debug_registers_fixed_bits_and_aliases(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(dr6, rax);
            a.mov(dr7, rax);
            a.mov(rbx, dr6);
            a.mov(rcx, dr7);
            a.mov(dr4, rdx);   // DR4 is DR6 while CR4.DE = 0
            a.mov(rsi, dr5);   // DR5 is DR7
            a.mov(rdi, dr6);
        });
        m.Gpr(0) = 0;
        m.Gpr(2) = 0xFFFF_FFFF;
        m.RunToHlt();
        Assert.Equal(0xFFFF_0FF0UL, m.Gpr(3)); // DR6 after writing 0: reserved bits read 1 (SDM 18.2.3)
        Assert.Equal(0x400UL, m.Gpr(1));       // DR7: bit 10 reads 1
        Assert.Equal(0x400UL, m.Gpr(6));
        Assert.Equal(0xFFFF_EFFFUL, m.Gpr(7)); // all writable DR6 bits set; bit 12 reads 0
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Debug_register_upper_bits_are_gp_and_gd_raises_db(int tier)
    {
        using var m = new SysMachine(tier, a => a.mov(dr7, rax));
        m.Gpr(0) = 1UL << 32;
        m.S->Dr[7] = 0x400;
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        Assert.Equal(0x400UL, m.S->Dr[7]);

        using var m2 = new SysMachine(tier, a => a.mov(rax, dr0));
        m2.S->Dr[7] = 0x400 | (1 << 13); // GD
        m2.S->Dr[6] = 0xFFFF_0FF0;
        m2.RunExpectFault(Vector.DB, SysMachine.CodeAddr);
        Assert.Equal(0xFFFF_2FF0UL, m2.S->Dr[6]); // BD set
        Assert.Equal(0x400UL, m2.S->Dr[7]);       // GD cleared for the handler
    }
}
