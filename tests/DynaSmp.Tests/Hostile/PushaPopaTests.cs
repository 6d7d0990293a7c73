using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 6: PUSHA/POPA (0x60/0x61) in both operand sizes; #UD in 64-bit mode (SDM: "invalid in 64-bit mode").
/// They used to raise #UD everywhere, so 32-bit kernels triple-faulted.</summary>
public unsafe class PushaPopaTests
{
    public static TheoryData<int> All => Tiers.All;

    [Theory, MemberData(nameof(All))]
    public void Pushad_stores_eight_registers_with_the_original_esp_and_popad_restores_all_but_esp(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(eax, 0xA0A0_0001); a.mov(ecx, 0xC0C0_0002); a.mov(edx, 0xD0D0_0003); a.mov(ebx, 0xB0B0_0004);
            a.mov(ebp, 0xBEBE_0006); a.mov(esi, 0x5151_0007); a.mov(edi, 0xD1D1_0008);
            a.pushad();
            a.mov(__dword_ptr[esp + 12], 0x1234_5678u); // the saved ESP slot: POPAD must skip it
            a.mov(__dword_ptr[esp + 16], 0xBBBB_BBBBu); // saved EBX
            a.xor(eax, eax); a.xor(ecx, ecx); a.xor(ebx, ebx); a.xor(edi, edi);
            a.popad();
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x80000UL, g.Reg(4));
        Assert.Equal(0xA0A0_0001UL, g.Reg(0));
        Assert.Equal(0xC0C0_0002UL, g.Reg(1));
        Assert.Equal(0xBBBB_BBBBUL, g.Reg(3));
        Assert.Equal(0xD1D1_0008UL, g.Reg(7));
        // Memory image: EDI lowest, EAX highest, ESP = value before PUSHAD.
        Assert.Equal(0xD1D1_0008UL, g.Read(0x80000 - 32, 4));
        Assert.Equal(0xA0A0_0001UL, g.Read(0x80000 - 4, 4));
    }

    [Theory, MemberData(nameof(All))]
    public void Pushaw_and_popaw_move_16_bits_and_keep_the_upper_halves(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(eax, 0x1111_2222); a.mov(esi, 0x3333_4444);
            a.AddInstruction(Instruction.Create(Code.Pushaw)); // 66 60
            a.mov(__word_ptr[esp + 14], 0x9999);              // saved AX
            a.mov(eax, 0x5555_0000); a.mov(esi, 0x7777_0000);
            a.AddInstruction(Instruction.Create(Code.Popaw));  // 66 61
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x5555_9999UL, g.Reg(0));
        Assert.Equal(0x7777_4444UL, g.Reg(6));
        Assert.Equal(0x80000UL, g.Reg(4));
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_pusha_uses_sp(int tier)
    {
        using var g = Guest.Real(tier, 0x100, 0, 0x2000, a =>
        {
            a.mov(ax, 0x1234); a.mov(di, 0x5678);
            a.pusha();
            a.xor(ax, ax); a.xor(di, di);
            a.popa();
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x1234UL, g.Reg(0) & 0xFFFF);
        Assert.Equal(0x5678UL, g.Reg(7) & 0xFFFF);
        Assert.Equal(0x2000UL, g.Reg(4) & 0xFFFF);
    }

    [Fact]
    public void Pusha_is_UD_in_64_bit_mode()
    {
        using var g = new Guest(Tiers.Interpret);
        g.Ram.Write(0x1000, [0x60]);
        g.Cpu.SetFlat64(0x1000, 0x80000);
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.UD, g.Cpu.ExitVector);
        Assert.Equal(0x80000UL, g.Reg(4));
    }

    [Fact]
    public void A_fault_part_way_leaves_esp_unchanged()
    {
        // ESP = 0x10: the 5th store wraps below 0 in a 32-bit stack of limit 4 GiB: flat, so it wraps to 0xFFFFFFFx,
        // outside RAM; with paging off that is MMIO (ignored). Use an expand-up SS limit instead: SS limit 0x7FFFF,
        // ESP 0x80010 -> the first store at 0x8000C is above the limit: #SS(0), nothing changes.
        using var g = Guest.Flat32(Tiers.Interpret, a => { a.pushad(); a.hlt(); }, esp: 0x80010);
        g.S->Ss.Limit = 0x7FFFF;
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.SS, g.Cpu.ExitVector);
        Assert.Equal(0x80010UL, g.Reg(4));
    }
}
