using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Modes;

/// <summary>16- and 32-bit effective addresses, the 0x67 prefix, default segments and real-mode
/// segment arithmetic. Real-mode programs run at CS = 0x1000 (linear 0x10000), IP = 0x100.</summary>
public unsafe class AddressingTests
{
    public static TheoryData<int> All => Tiers.All;

    static void LoadSegments(Assembler a, ushort ds, ushort es, ushort ss)
    {
        a.mov(ax, ds); a.mov(AssemblerRegisters.ds, ax);
        a.mov(ax, es); a.mov(AssemblerRegisters.es, ax);
        a.mov(ax, ss); a.mov(AssemblerRegisters.ss, ax);
    }

    [Theory, MemberData(nameof(All))]
    public void Sixteen_bit_base_index_forms_and_their_default_segments(int tier)
    {
        // SDM Vol. 2A Table 2-1 (16-bit ModR/M) and Vol. 1 3.7.4 / Table 3-5: BP-based forms default to SS,
        // the others to DS; a segment override replaces the default. Real mode: linear = seg * 16 + offset.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0xFFFE, a =>
        {
            LoadSegments(a, 0x2000, 0x2000, 0x3000);
            a.mov(bx, 0x100); a.mov(si, 0x20); a.mov(di, 0x40); a.mov(bp, 0x100);
            a.mov(__word_ptr[bx + si + 0x10], 0x1111);   // DS:0130
            a.mov(__word_ptr[bp + di], 0x2222);          // SS:0140
            a.mov(__word_ptr[bp + di + 8], 0x3333);      // SS:0148
            a.mov(__word_ptr[bx + di], 0x4444);          // DS:0140
            a.mov(__word_ptr.ds[bp + si], 0x5555);       // DS:0120 (override)
            a.mov(__word_ptr[bp], 0x6666);               // SS:0100 ([BP+disp8 0])
            a.mov(__word_ptr.ss[bx + si + 0x10], 0x7777);// SS:0130 (override)
            a.mov(ax, __word_ptr[bx + si + 0x10]);
            a.mov(cx, __word_ptr[bp + di]);
            a.lea(dx, __[bp + di + 8]);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x1111UL, g.Read(0x20130, 2));
        Assert.Equal(0x2222UL, g.Read(0x30140, 2));
        Assert.Equal(0x3333UL, g.Read(0x30148, 2));
        Assert.Equal(0x4444UL, g.Read(0x20140, 2));
        Assert.Equal(0x5555UL, g.Read(0x20120, 2));
        Assert.Equal(0UL, g.Read(0x30120, 2));
        Assert.Equal(0x6666UL, g.Read(0x30100, 2));
        Assert.Equal(0x7777UL, g.Read(0x30130, 2));
        Assert.Equal(0x1111UL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0x2222UL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0x148UL, g.Reg(R.Dx) & 0xFFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Sixteen_bit_effective_address_wraps_at_64K(int tier)
    {
        // SDM Vol. 1 3.7.5 / Vol. 2A 2.1.5: with a 16-bit address size the effective address is computed
        // modulo 2^16, so BX + SI = 0x10010 addresses offset 0x0010 of the segment.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0xFFFE, a =>
        {
            LoadSegments(a, 0x2000, 0x2000, 0x3000);
            a.mov(bx, 0xFFF0); a.mov(si, 0x20);
            a.mov(__word_ptr[bx + si], 0xA1A1);          // DS:0010
            a.mov(__word_ptr[bx + 0x30], 0xA2A2);        // DS:0020 (base + disp16 wraps)
            a.mov(bp, 0x8); a.mov(di, 0);
            a.mov(__word_ptr[bp + di - 0x10], 0xA3A3);   // SS:FFF8 (negative displacement wraps down)
            a.lea(ax, __[bx + si]);
            a.mov(ecx, 0xFFFF_FFFF);
            a.lea(cx, __[bx + si + 0x100]);              // 16-bit LEA: 0x0110, upper ECX kept
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0xA1A1UL, g.Read(0x20010, 2));
        Assert.Equal(0UL, g.Read(0x30010, 2));           // not DS base + 0x10010
        Assert.Equal(0xA2A2UL, g.Read(0x20020, 2));
        Assert.Equal(0xA3A3UL, g.Read(0x3FFF8, 2));
        Assert.Equal(0x10UL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0xFFFF_0110UL, g.Reg(R.Cx) & 0xFFFF_FFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Address_size_prefix_gives_32_bit_addressing_in_16_bit_code(int tier)
    {
        // SDM Vol. 1 3.6: 0x67 in 16-bit code selects 32-bit addressing (SIB, scaled index, 32-bit sums).
        using var g = Guest.Real(tier, 0x1000, 0x100, 0xFFFE, a =>
        {
            LoadSegments(a, 0x2000, 0x2000, 0x3000);
            a.mov(ebx, 0x100); a.mov(ecx, 8);
            a.mov(__word_ptr[ebx + ecx * 4 + 0x10], 0xABCD);  // DS:0130
            a.mov(ax, __word_ptr[ebx + ecx * 4 + 0x10]);
            a.mov(ebp, 0x200);
            a.mov(__word_ptr[ebp + 4], 0x1234);               // EBP base defaults to SS too: SS:0204
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0xABCDUL, g.Read(0x20130, 2));
        Assert.Equal(0xABCDUL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0x1234UL, g.Read(0x30204, 2));
    }

    [Theory, MemberData(nameof(All))]
    public void Address_size_prefix_does_not_wrap_32_bit_offsets_in_unreal_mode(int tier)
    {
        // A real-mode DS whose cached limit is 4 GiB (left over from protected mode, SDM Vol. 3A 3.4.3:
        // real-mode segment loads change only selector and base): EBX + ESI = 0x10010 is not wrapped
        // with 0x67, while the same sum with 16-bit addressing wraps to 0x0010.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0xFFFE, a =>
        {
            LoadSegments(a, 0x2000, 0x2000, 0x3000);
            a.mov(ebx, 0xFFF0); a.mov(esi, 0x20);
            a.mov(__word_ptr[ebx + esi], 0x9999);   // DS:00010010 -> linear 0x30010
            a.mov(__word_ptr[bx + si], 0x8888);     // DS:0010     -> linear 0x20010
            a.hlt();
        });
        g.S->Ds.Limit = 0xFFFF_FFFF;
        g.S->Es.Limit = 0xFFFF_FFFF;
        g.RunToHlt();
        Assert.Equal(0x9999UL, g.Read(0x30010, 2));
        Assert.Equal(0x8888UL, g.Read(0x20010, 2));
    }

    [Theory, MemberData(nameof(All))]
    public void Address_size_prefix_gives_16_bit_addressing_in_32_bit_code(int tier)
    {
        // 0x67 in 32-bit code: 16-bit ModR/M forms, only BX/SI (low halves) count, the sum wraps at 64 KiB.
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(ebx, 0x0001_2000); a.mov(esi, 0x30);
            a.mov(__dword_ptr[bx + si], 0x1357_9BDF);   // offset 0x2030
            a.mov(ebx, 0x0005_FFF0); a.mov(esi, 0x0007_0040);
            a.mov(__word_ptr[bx + si + 0x10], 0x2468);   // (0xFFF0 + 0x40 + 0x10) & 0xFFFF = 0x0040
            a.mov(edx, __dword_ptr[bx + si - 0x30]);     // (0xFFF0 + 0x40 - 0x30) & 0xFFFF = 0: reads offset 0
            a.hlt();
        });
        g.Ram.Write(0, new byte[] { 0x78, 0x56, 0x34, 0x12 });
        g.RunToHlt();
        Assert.Equal(0x1357_9BDFUL, g.Read(0x2030, 4));
        Assert.Equal(0UL, g.Read(0x12030, 4));
        Assert.Equal(0x2468UL, g.Read(0x40, 2));
        Assert.Equal(0x1234_5678UL, g.Reg(R.Dx));
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_segment_arithmetic_and_overrides(int tier)
    {
        // SDM Vol. 3A 21.1.1: linear = selector * 16 + offset. Overrides pick DS, ES, SS, FS, GS or CS;
        // 2001:0000 and 2000:0010 are the same byte.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0xFFFE, a =>
        {
            LoadSegments(a, 0x2000, 0x3000, 0x4000);
            a.mov(ax, 0x5000); a.mov(fs, ax);
            a.mov(ax, 0x6000); a.mov(gs, ax);
            a.mov(__word_ptr[0x10], 1);
            a.mov(__word_ptr.es[0x10], 2);
            a.mov(__word_ptr.ss[0x10], 3);
            a.mov(__word_ptr.fs[0x10], 4);
            a.mov(__word_ptr.gs[0x10], 5);
            a.mov(__word_ptr.cs[0x2010], 6);
            a.mov(ax, 0x2001); a.mov(es, ax);
            a.mov(bx, __word_ptr.es[0]);       // same linear byte as DS:0010
            a.mov(cx, ds);
            a.mov(dx, es);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(1UL, g.Read(0x20010, 2));
        Assert.Equal(2UL, g.Read(0x30010, 2));
        Assert.Equal(3UL, g.Read(0x40010, 2));
        Assert.Equal(4UL, g.Read(0x50010, 2));
        Assert.Equal(5UL, g.Read(0x60010, 2));
        Assert.Equal(6UL, g.Read(0x12010, 2));
        Assert.Equal(1UL, g.Reg(R.Bx) & 0xFFFF);
        Assert.Equal(0x2000UL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0x2001UL, g.Reg(R.Dx) & 0xFFFF);
        Assert.Equal(0x20010UL, g.S->Es.Base);
    }
}
