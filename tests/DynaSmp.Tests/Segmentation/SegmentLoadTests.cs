using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static DynaSmp.Tests.Segmentation.SegMachine;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Segmentation;

/// <summary>MOV/POP/LSS segment-register loads: every check of the MOV instruction page with its exception and error code.</summary>
public unsafe class SegmentLoadTests
{
    public static readonly TheoryData<int> Tiers2 = new() { Tiers.Interpret, Tiers.CompileFirst };

    public static readonly TheoryData<int, bool, ushort, int, int> Faults = new()
    {
        // tier, load SS?, selector, expected vector, expected error code
        { 0, false, NotPresent, Vector.NP, NotPresent },
        { 0, true, NotPresent, Vector.SS, NotPresent },
        { 0, false, ExecOnly, Vector.GP, ExecOnly },
        { 0, true, ReadOnly, Vector.GP, ReadOnly },
        { 0, true, 0, Vector.GP, 0 },
        { 0, true, 3, Vector.GP, 0 },
        { 0, false, 0x100, Vector.GP, 0x100 },
        { 0, false, KData | 3, Vector.GP, KData }, // RPL 3 > DPL 0
        { 0, true, Data1 | 1, Vector.GP, Data1 },  // SS: RPL 1 != CPL 0
        { 0, true, K32, Vector.GP, K32 },          // SS: code
        { 0, false, 0x0C, Vector.GP, 0x0C },       // LDT selector with no LDT loaded
        { 0, false, Tss, Vector.GP, Tss },         // system descriptor
        { 1, false, NotPresent, Vector.NP, NotPresent },
        { 1, true, NotPresent, Vector.SS, NotPresent },
        { 1, true, ReadOnly, Vector.GP, ReadOnly },
        { 1, false, 0x100, Vector.GP, 0x100 },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public void Bad_selector_raises_the_SDM_exception_and_leaves_the_register(int tier, bool ss, ushort sel, int vector, int error)
    {
        using var g = Protected32(tier, a =>
        {
            a.mov(eax, (uint)sel);
            if (ss) a.mov(AssemblerRegisters.ss, ax); else a.mov(ds, ax);
            a.hlt();
        });
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(vector, g.Cpu.ExitVector);
        Assert.Equal((ulong)error, g.Cpu.ExitErrorCode);
        Assert.Equal(0x1005UL, g.Rip); // the MOV faulted, after the 5-byte MOV EAX
        Assert.Equal(KData, (ss ? g.S->Ss : g.S->Ds).Selector);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Good_loads_fill_the_cache_and_set_the_accessed_bit(int tier)
    {
        using var g = Protected32(tier, a =>
        {
            a.mov(eax, (uint)Data1 | 1);
            a.mov(ds, ax);           // DPL 1 data, RPL 1, CPL 0: allowed
            a.mov(eax, (uint)Conforming);
            a.mov(es, ax);           // readable conforming code: allowed in a data register
            a.xor(eax, eax);
            a.mov(fs, ax);           // null: allowed, unusable
            a.mov(eax, (uint)KData);
            a.mov(AssemblerRegisters.ss, ax);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal((ushort)(Data1 | 1), g.S->Ds.Selector);
        Assert.Equal(0xB3u, g.S->Ds.Attributes & 0xFF); // type 3: accessed
        Assert.Equal(0xFFFF_FFFFu, g.S->Ds.Limit);       // G = 1: 0xFFFFF pages
        Assert.Equal(1, (int)(g.Read(GdtBase + Data1 + 5, 1) & 1));
        Assert.Equal(1, (int)(g.Read(GdtBase + Conforming + 5, 1) & 1));
        Assert.Equal(0, (int)(g.S->Fs.Attributes & SegmentCache.Present));
        Assert.Equal(0x9Fu, g.S->Es.Attributes & 0xFF);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Ldt_selector_loads_from_the_LDT_after_LLDT(int tier)
    {
        using var g = Protected32(tier, a =>
        {
            a.mov(eax, (uint)Ldt);
            a.lldt(ax);
            a.sldt(ebx);
            a.mov(eax, 0x0Cu);
            a.mov(ds, ax);
            a.mov(eax, __dword_ptr[0x10]); // DS base 0x4000
            a.hlt();
        });
        g.Ram.Write(0x4010, BitConverter.GetBytes(0xCAFEF00Du));
        g.RunToHlt();
        Assert.Equal((ulong)Ldt, g.Reg(R.Bx));
        Assert.Equal(0x4000UL, g.S->Ds.Base);
        Assert.Equal(0xCAFEF00DUL, g.Reg(R.Ax));
        Assert.Equal(LdtBase, g.S->Ldtr.Base);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Null_SS_is_legal_in_64_bit_mode_at_CPL_0_only_with_RPL_0(int tier)
    {
        using var g = Long64(tier, a =>
        {
            a.xor(eax, eax);
            a.mov(ss, ax);
            a.mov(eax, 3);
            a.mov(ss, ax);
            a.hlt();
        });
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        Assert.Equal(0UL, g.Cpu.ExitErrorCode);
        Assert.Equal(0x100AUL, g.Rip); // the second MOV SS (after XOR 2, MOV SS 3 with its 66h prefix, MOV EAX 5)
        Assert.Equal((ushort)0, g.S->Ss.Selector);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Pop_SS_and_LSS_check_like_MOV(int tier)
    {
        using var g = Protected32(tier, a =>
        {
            a.push((uint)KData);
            a.pop(ss);
            a.mov(eax, 0x9000u);
            a.lss(ebx, __fword_ptr[eax]);
            a.mov(eax, 0x9010u);
            a.lfs(ecx, __fword_ptr[eax]);
            a.hlt();
        });
        g.Ram.Write(0x9000, [0x44, 0x33, 0x22, 0x11, (byte)KData, 0]);
        g.Ram.Write(0x9010, [0x88, 0x77, 0x66, 0x55, (byte)NotPresent, 0]);
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.NP, g.Cpu.ExitVector);
        Assert.Equal((ulong)NotPresent, g.Cpu.ExitErrorCode);
        Assert.Equal(0x11223344UL, g.Reg(R.Bx));
        Assert.Equal(0UL, g.Reg(R.Cx)); // LFS faulted before writing ECX
        Assert.Equal(KData, g.S->Ss.Selector);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Real_mode_load_sets_base_to_selector_times_16_and_keeps_the_limit(int tier)
    {
        using var g = Guest.Real(tier, 0x0800, 0x100, 0xFFF0, a =>
        {
            a.mov(ax, 0x1234);
            a.mov(ds, ax);
            a.mov(bx, __word_ptr[0x10]);
            a.hlt();
        });
        g.Ram.Write(0x12350, [0x5A, 0xA5]);
        g.RunToHlt();
        Assert.Equal(0x12340UL, g.S->Ds.Base);
        Assert.Equal(0xFFFFu, g.S->Ds.Limit);
        Assert.Equal(0xA55AUL, g.Reg(R.Bx) & 0xFFFF);
    }
}
