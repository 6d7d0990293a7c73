using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Modes;

/// <summary>Operand size in 16- and 32-bit code: the 0x66 prefix, partial-register writes, sign/zero extension.
/// Real-mode programs run at CS = 0x1000, IP = 0x100; data lives at offset 0x2000 (another page).</summary>
public unsafe class OperandSizeTests
{
    public static TheoryData<int> All => Tiers.All;

    [Theory, MemberData(nameof(All))]
    public void Real_mode_16_bit_writes_leave_the_upper_half_of_the_32_bit_register(int tier)
    {
        // SDM Vol. 1 3.4.1: AX/BX/CL/CH name the low bits of EAX/EBX/ECX; writing them leaves the rest.
        // A 16-bit ADD carries out into CF, not into bit 16.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            a.mov(eax, 0x1234_FFFF);   // 66 B8: 32-bit operand in 16-bit code
            a.add(ax, 1);
            a.setb(dl);
            a.mov(ebx, 0xAAAA_5555);
            a.mov(bx, 0x1111);
            a.mov(ecx, 0xFFFF_FFFF);
            a.mov(cl, 0);
            a.mov(ch, 0x12);
            a.mov(esi, 0xFFFF_FFFF);
            a.add(esi, 1);            // 32-bit add: wraps to 0 with CF
            a.setb(dh);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x1234_0000UL, g.Reg(R.Ax) & 0xFFFF_FFFF);
        Assert.Equal(0xAAAA_1111UL, g.Reg(R.Bx) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_1200UL, g.Reg(R.Cx) & 0xFFFF_FFFF);
        Assert.Equal(0UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0x0101UL, g.Reg(R.Dx) & 0xFFFF); // both additions carried out
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_operand_size_prefix_selects_16_bit_registers_and_memory(int tier)
    {
        // SDM Vol. 1 3.6: in 32-bit code 0x66 selects 16-bit operands; a 16-bit load or store touches two bytes.
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(eax, 0x0001_FFFF);
            a.inc(ax);                               // 66 40/FF: wraps within AX
            a.mov(ebx, 0xAAAA_AAAA);
            a.mov(bx, __word_ptr[0x2000]);           // loads 0x3344
            a.mov(__word_ptr[0x2004], ax);           // stores 2 bytes only
            a.mov(ecx, __dword_ptr[0x2000]);         // 32-bit load
            a.mov(edx, 0x8000_0000);
            a.add(edx, edx);                         // 32-bit: 0 with CF
            a.setb(dl);
            a.hlt();
        });
        g.Ram.Write(0x2000, new byte[] { 0x44, 0x33, 0x22, 0x11, 0xEE, 0xEE, 0xEE, 0xEE });
        g.RunToHlt();
        Assert.Equal(0x0001_0000UL, g.Reg(R.Ax));
        Assert.Equal(0xAAAA_3344UL, g.Reg(R.Bx));
        Assert.Equal(0x1122_3344UL, g.Reg(R.Cx));
        Assert.Equal(1UL, g.Reg(R.Dx));
        Assert.Equal(0xEEEE_0000UL, g.Read(0x2004, 4));
    }

    /// <summary>CBW, CWD, CWDE, CDQ: the same mnemonics whichever the code size (Iced adds 0x66 as needed).</summary>
    static void ConvertProgram(Assembler a)
    {
        a.mov(eax, 0x1234_5680); a.cbw(); a.mov(esi, eax);                    // AL = 80h -> AX = FF80h
        a.mov(edx, 0xAAAA_AAAA); a.mov(eax, 0x1234_8000); a.cwd(); a.mov(ebx, edx); // AX < 0 -> DX = FFFFh
        a.mov(edx, 0xAAAA_AAAA); a.mov(eax, 0x1234_0001); a.cwd(); a.mov(ecx, edx); // AX > 0 -> DX = 0
        a.mov(eax, 0x1234_8001); a.cwde(); a.mov(edi, eax);                   // AX = 8001h -> EAX = FFFF8001h
        a.mov(eax, 0x8000_0000); a.cdq(); a.mov(ebp, edx);                    // EAX < 0 -> EDX = FFFFFFFFh
        a.mov(eax, 0x7FFF_FFFF); a.cdq();                                     // EAX > 0 -> EDX = 0
        a.hlt();
    }

    static void AssertConvertResults(Guest g)
    {
        // SDM CBW/CWDE/CDQE and CWD/CDQ/CQO: CBW writes AX only, CWD writes DX only (16-bit operand size).
        Assert.Equal(0x1234_FF80UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0xAAAA_FFFFUL, g.Reg(R.Bx) & 0xFFFF_FFFF);
        Assert.Equal(0xAAAA_0000UL, g.Reg(R.Cx) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_8001UL, g.Reg(R.Di) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_FFFFUL, g.Reg(R.Bp) & 0xFFFF_FFFF);
        Assert.Equal(0UL, g.Reg(R.Dx) & 0xFFFF_FFFF);
        Assert.Equal(0x7FFF_FFFFUL, g.Reg(R.Ax) & 0xFFFF_FFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_cbw_cwd_cwde_cdq(int tier)
    {
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, ConvertProgram);
        g.RunToHlt();
        AssertConvertResults(g);
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_cbw_cwd_cwde_cdq(int tier)
    {
        using var g = Guest.Flat32(tier, ConvertProgram);
        g.RunToHlt();
        AssertConvertResults(g);
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_movzx_and_movsx(int tier)
    {
        // SDM MOVZX/MOVSX: the destination size is the operand size; a 16-bit destination leaves bits 16-31.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            a.mov(eax, 0xAAAA_AAAA);
            a.mov(bl, 0x80);
            a.movzx(ax, bl);                        // 0F B6, 16-bit
            a.mov(ecx, 0xCCCC_CCCC);
            a.movsx(cx, bl);                        // 0F BE, 16-bit
            a.movsx(edx, bl);                       // 66 0F BE
            a.movzx(esi, __word_ptr[0x2000]);       // 66 0F B7
            a.movsx(edi, __word_ptr[0x2000]);       // 66 0F BF
            a.mov(ebp, 0x5555_0000);
            a.movsx(bp, __byte_ptr[0x2002]);        // 0F BE from memory
            a.hlt();
        });
        g.Ram.Write(0x10000 + 0x2000, new byte[] { 0x01, 0x80, 0xFE });
        g.RunToHlt();
        Assert.Equal(0xAAAA_0080UL, g.Reg(R.Ax) & 0xFFFF_FFFF);
        Assert.Equal(0xCCCC_FF80UL, g.Reg(R.Cx) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_FF80UL, g.Reg(R.Dx) & 0xFFFF_FFFF);
        Assert.Equal(0x0000_8001UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_8001UL, g.Reg(R.Di) & 0xFFFF_FFFF);
        Assert.Equal(0x5555_FFFEUL, g.Reg(R.Bp) & 0xFFFF_FFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_flags_follow_the_operand_size(int tier)
    {
        // SDM Vol. 1 3.4.3.1: OF/SF/CF are taken at the operand's width: 7FFFh + 1 overflows a word,
        // 7Fh + 1 overflows AH, FFFFh + 1 carries out of a word but not out of a dword.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            var less = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(eax, 0x7FFF);
            a.add(ax, 1);
            a.seto(bl); a.sets(bh); a.setb(cl);          // 1, 1, 0
            a.mov(edx, 0x7F00);
            a.add(dh, 1);
            a.seto(ch);                                  // 1
            a.mov(esi, 0xFFFF);
            a.add(esi, 1);
            a.setb(dl);                                  // 0 (32-bit add of 0000FFFFh)
            a.stc();
            a.inc(si);                                   // INC leaves CF
            a.setb(dh);                                  // 1
            a.mov(di, 0x8000);
            a.cmp(di, 1);                                // -32768 < 1 as signed words
            a.jl(less);
            a.mov(bp, 0xBAD);
            a.jmp(done);
            a.Label(ref less);
            a.mov(bp, 0x600D);
            a.Label(ref done);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x0101UL, g.Reg(R.Bx) & 0xFFFF);
        Assert.Equal(0x0100UL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0x0100UL, g.Reg(R.Dx) & 0xFFFF);
        Assert.Equal(0x1_0001UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0x600DUL, g.Reg(R.Bp) & 0xFFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_segment_pushes_and_flag_pushes(int tier)
    {
        // SDM PUSH/POP Sreg and PUSHF/PUSHFD: 16-bit code pushes 2 bytes for Sreg and FLAGS, 4 for PUSHFD.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            a.mov(ax, 0x2345); a.mov(es, ax);
            a.push(es);          // 7FFE
            a.pop(ds);           // DS = 2345h
            a.push(cs);          // 7FFE
            a.pop(fs);           // FS = 1000h
            a.mov(ax, ds); a.mov(bx, fs);
            a.mov(ecx, esp);     // 8000
            a.pushf();           // 7FFE
            a.mov(edx, esp);
            a.pushfd();          // 7FFA
            a.mov(esi, esp);
            a.popfd();
            a.popf();
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x2345UL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0x1000UL, g.Reg(R.Bx) & 0xFFFF);
        Assert.Equal(0x23450UL, g.S->Ds.Base);
        Assert.Equal(0x8000UL, g.Reg(R.Cx));
        Assert.Equal(0x7FFEUL, g.Reg(R.Dx));
        Assert.Equal(0x7FFAUL, g.Reg(R.Si));
        Assert.Equal(0x8000UL, g.Reg(R.Sp));
        Assert.Equal(0x2UL, g.Read(0x10000 + 0x7FFE, 2) & 0x2); // bit 1 of FLAGS always reads 1
    }
}
