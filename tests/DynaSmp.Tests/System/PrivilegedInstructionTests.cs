using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>Every privileged system instruction runs at CPL 0 and raises #GP(0) at CPL 3, leaving state
/// unchanged (SDM Vol. 3A 5.9 "Privileged Instructions").</summary>
public unsafe class PrivilegedInstructionTests
{
    const ulong PaeFx = Cr4.PAE | Cr4.OSFXSR;

    // name -> (program, register setup before the run)
    static readonly Dictionary<string, (Action<Assembler> Emit, Action<SysMachine> Setup)> Cases = new()
    {
        ["mov rax, cr0"] = (a => a.mov(rax, cr0), _ => { }),
        ["mov cr0, rax"] = (a => a.mov(cr0, rax), m => m.Gpr(0) = m.S->Cr0),
        ["mov rax, cr2"] = (a => a.mov(rax, cr2), _ => { }),
        ["mov cr2, rax"] = (a => a.mov(cr2, rax), m => m.Gpr(0) = 0x1234),
        ["mov cr3, rax"] = (a => a.mov(cr3, rax), m => m.Gpr(0) = 0x5000),
        ["mov rax, cr3"] = (a => a.mov(rax, cr3), _ => { }),
        ["mov cr4, rax"] = (a => a.mov(cr4, rax), m => { m.S->Cr4 = PaeFx; m.Gpr(0) = PaeFx | Cr4.PGE; }),
        ["mov rax, cr4"] = (a => a.mov(rax, cr4), _ => { }),
        ["mov cr8, rax"] = (a => a.mov(cr8, rax), m => m.Gpr(0) = 5),
        ["mov rax, cr8"] = (a => a.mov(rax, cr8), _ => { }),
        ["mov dr0, rax"] = (a => a.mov(dr0, rax), m => m.Gpr(0) = 0x4000),
        ["mov rax, dr7"] = (a => a.mov(rax, dr7), _ => { }),
        ["clts"] = (a => a.clts(), m => m.S->Cr0 |= Cr0.TS),
        ["lmsw ax"] = (a => a.lmsw(ax), m => m.Gpr(0) = 0x3),
        ["invlpg"] = (a => a.invlpg(__[rbx]), m => m.Gpr(3) = 0x3000),
        ["wbinvd"] = (a => a.wbinvd(), _ => { }),
        ["invd"] = (a => a.invd(), _ => { }),
        ["rdmsr"] = (a => a.rdmsr(), m => m.Gpr(1) = Msr.Star),
        ["wrmsr"] = (a => a.wrmsr(), m => { m.Gpr(1) = Msr.Star; m.Gpr(0) = 0x11; m.Gpr(2) = 0x22; }),
        ["hlt"] = (a => a.hlt(), _ => { }),
    };

    public static TheoryData<string, int> All()
    {
        var d = new TheoryData<string, int>();
        foreach (var k in Cases.Keys) { d.Add(k, 0); d.Add(k, 1); }
        return d;
    }

    [Theory, MemberData(nameof(All))]
    public void Runs_at_cpl0(string name, int tier)
    {
        var (emit, setup) = Cases[name];
        using var m = new SysMachine(tier, emit);
        setup(m);
        var r = m.Cpu.Run();
        Assert.True(r == ExitReason.Hlt, $"exit {r}: {m.Cpu.ExitMessage}");
    }

    [Theory, MemberData(nameof(All))]
    public void Faults_gp0_at_cpl3(string name, int tier)
    {
        var (emit, setup) = Cases[name];
        using var m = new SysMachine(tier, emit);
        setup(m);
        m.Ring3();
        ulong cr0 = m.S->Cr0, cr3 = m.S->Cr3, cr4 = m.S->Cr4, cr8 = m.S->Cr8, rax = m.Gpr(0), dr0 = m.S->Dr[0], star = m.S->Star;
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr, 0);
        Assert.Equal(cr0, m.S->Cr0);
        Assert.Equal(cr3, m.S->Cr3);
        Assert.Equal(cr4, m.S->Cr4);
        Assert.Equal(cr8, m.S->Cr8);
        Assert.Equal(rax, m.Gpr(0));
        Assert.Equal(dr0, m.S->Dr[0]);
        Assert.Equal(star, m.S->Star);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Cpl0_results(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(cr2, rax);
            a.mov(rbx, cr2);
            a.mov(cr8, rcx);
            a.mov(rdx, cr8);
            a.clts();
            a.mov(rsi, cr0);
        });
        m.Gpr(0) = 0xFFFF_8000_DEAD_B000;
        m.Gpr(1) = 0xF;
        m.S->Cr0 |= Cr0.TS;
        m.RunToHlt();
        Assert.Equal(0xFFFF_8000_DEAD_B000, m.S->Cr2);
        Assert.Equal(0xFFFF_8000_DEAD_B000, m.Gpr(3));
        Assert.Equal(0xFUL, m.S->Cr8);
        Assert.Equal(0xFUL, m.Gpr(2));
        Assert.Equal(0UL, m.S->Cr0 & Cr0.TS);
        Assert.Equal(m.S->Cr0, m.Gpr(6));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Smsw_is_not_privileged(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.smsw(eax);
            a.smsw(__word_ptr[rbx]);
        });
        m.Gpr(0) = 0xFFFF_FFFF_FFFF_FFFF;
        m.Gpr(3) = SysMachine.DataAddr;
        m.S->Cr0 |= Cr0.MP | Cr0.TS;
        m.Mem(SysMachine.DataAddr, 4).Fill(0xEE);
        m.Ring3();
        m.RunToHlt();
        ulong cr0 = m.S->Cr0;
        Assert.Equal((uint)cr0, m.Gpr(0)); // 32-bit destination: CR0[31:0], zero-extended
        Assert.Equal((ushort)cr0, BitConverter.ToUInt16(m.Mem(SysMachine.DataAddr, 2)));
        Assert.Equal(0xEE, m.Mem(SysMachine.DataAddr + 2, 1)[0]); // memory form writes 16 bits only
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rdpmc_needs_cpl0_or_cr4_pce(int tier)
    {
        using var m = new SysMachine(tier, a => a.rdpmc());
        m.Gpr(1) = 1; m.Gpr(0) = 7; m.Gpr(2) = 7;
        m.Ring3();
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);

        m.Reset();
        m.S->Cr4 |= Cr4.PCE;
        m.Ring3();
        m.RunToHlt();
        Assert.Equal(0UL, m.Gpr(0));
        Assert.Equal(0UL, m.Gpr(2));

        m.Reset();
        m.Gpr(1) = 2; // no such counter
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rdtsc_with_cr4_tsd_is_privileged(int tier)
    {
        using var m = new SysMachine(tier, a => a.rdtsc());
        m.S->Cr4 |= Cr4.TSD;
        m.RunToHlt();
        m.Reset();
        m.S->Cr4 |= Cr4.TSD;
        m.Ring3();
        m.RunExpectFault(Vector.GP, SysMachine.CodeAddr);
        m.Reset();
        m.S->Cr4 &= ~Cr4.TSD;
        m.Ring3();
        m.RunToHlt();
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Undefined_control_and_debug_registers_are_ud(int tier)
    {
        // MOV to CR1 (0F 22 C8) and from DR8 (REX.R 0F 21 C0) are #UD even at CPL 3, before the privilege check.
        using var m = new SysMachine(tier, a => a.db(0x0F, 0x22, 0xC8));
        m.RunExpectFault(Vector.UD, SysMachine.CodeAddr);
        m.Reset();
        m.Ring3();
        m.RunExpectFault(Vector.UD, SysMachine.CodeAddr);
        using var m2 = new SysMachine(tier, a => a.db(0x44, 0x0F, 0x21, 0xC0));
        m2.RunExpectFault(Vector.UD, SysMachine.CodeAddr);
    }
}
