using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Modes;

/// <summary>PUSH/POP/CALL/RET operand sizes, stack-pointer width, LOOP/JCXZ counter size and 16-bit IP
/// wrap-around in 16- and 32-bit code.</summary>
public unsafe class StackAndBranchTests
{
    public static TheoryData<int> All => Tiers.All;

    [Theory, MemberData(nameof(All))]
    public void Real_mode_push_and_pop_sizes(int tier)
    {
        // SDM PUSH/POP: the operand size (16, or 32 with 0x66) decides how many bytes move; with SS.B = 0
        // the stack pointer is SP.
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            a.mov(eax, 0x1122_3344);
            a.push(ax);                                                   // SP 8000 -> 7FFE
            a.push(eax);                                                  // -> 7FFA
            a.push(0x5566);                                               // 68 iw -> 7FF8
            a.AddInstruction(Instruction.Create(Code.Pushd_imm32, 0x778899AA)); // 66 68 id -> 7FF4
            a.mov(ebp, esp);
            a.pop(ebx);                                                   // 4 bytes
            a.pop(cx);
            a.pop(edx);
            a.mov(esi, 0xFFFF_FFFF);
            a.pop(si);                                                    // 2 bytes, upper ESI kept
            a.hlt();
        });
        g.RunToHlt();
        const ulong ss = 0x10000;
        Assert.Equal(0x7FF4UL, g.Reg(R.Bp));
        Assert.Equal(0x3344UL, g.Read(ss + 0x7FFE, 2));
        Assert.Equal(0x1122_3344UL, g.Read(ss + 0x7FFA, 4));
        Assert.Equal(0x5566UL, g.Read(ss + 0x7FF8, 2));
        Assert.Equal(0x7788_99AAUL, g.Read(ss + 0x7FF4, 4));
        Assert.Equal(0x7788_99AAUL, g.Reg(R.Bx) & 0xFFFF_FFFF);
        Assert.Equal(0x5566UL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0x1122_3344UL, g.Reg(R.Dx) & 0xFFFF_FFFF);
        Assert.Equal(0xFFFF_3344UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0x8000UL, g.Reg(R.Sp));
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_stack_pointer_wraps_within_SP_and_keeps_the_upper_ESP(int tier)
    {
        // SDM Vol. 1 6.2.3 / PUSH: with a 16-bit stack-address size only SP is decremented (modulo 2^16).
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            a.mov(ax, 0x3000); a.mov(ss, ax);
            a.mov(esp, 0x1234_0002);
            a.mov(ax, 0xAAAA); a.mov(bx, 0xBBBB);
            a.push(ax);            // SS:0000
            a.push(bx);            // SS:FFFE
            a.mov(edi, esp);
            a.pop(cx);
            a.pop(dx);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x1234_FFFEUL, g.Reg(R.Di));
        Assert.Equal(0xAAAAUL, g.Read(0x30000, 2));
        Assert.Equal(0xBBBBUL, g.Read(0x3FFFE, 2));
        Assert.Equal(0xBBBBUL, g.Reg(R.Cx) & 0xFFFF);
        Assert.Equal(0xAAAAUL, g.Reg(R.Dx) & 0xFFFF);
        Assert.Equal(0x1234_0002UL, g.Reg(R.Sp));
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_call_and_ret_sizes(int tier)
    {
        // SDM CALL/RET (near): a 16-bit CALL pushes IP (2 bytes); with 0x66 it pushes EIP (4 bytes) and a
        // 0x66 RET pops 4. Subroutines at IP 0x400 and 0x500 record ESP and their return address.
        using var g = new Guest(tier);
        g.Load(16, 0x10100, 0x100, a =>
        {
            a.call(0x400UL);                                                     // 0x100, 3 bytes
            a.AddInstruction(Instruction.CreateBranch(Code.Call_rel32_32, 0x500)); // 0x103, 6 bytes
            a.mov(edx, esp);                                                     // 0x109
            a.hlt();
        });
        g.Load(16, 0x10400, 0x400, a =>
        {
            a.mov(ebx, esp);
            a.pop(si); a.push(si);
            a.ret();
        });
        g.Load(16, 0x10500, 0x500, a =>
        {
            a.mov(ecx, esp);
            a.mov(edi, 0xFFFF_FFFF);
            a.pop(edi); a.push(edi);
            a.AddInstruction(Instruction.Create(Code.Retnd));                     // 66 C3
        });
        g.Cpu.SetReal(0x1000, 0x100, 0x8000);
        g.RunToHlt();
        Assert.Equal(0x7FFEUL, g.Reg(R.Bx) & 0xFFFF_FFFF);
        Assert.Equal(0x103UL, g.Reg(R.Si) & 0xFFFF);
        Assert.Equal(0x7FFCUL, g.Reg(R.Cx) & 0xFFFF_FFFF);
        Assert.Equal(0x109UL, g.Reg(R.Di) & 0xFFFF_FFFF);
        Assert.Equal(0x8000UL, g.Reg(R.Dx) & 0xFFFF_FFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_call_and_ret_sizes(int tier)
    {
        // 32-bit code: CALL pushes 4 bytes; 0x66 CALL rel16 pushes IP (2 bytes) and EIP = target AND FFFFh;
        // 0x66 RET pops 2 bytes (SDM CALL/RET operation sections). POP DI merges into EDI.
        using var g = new Guest(tier);
        g.Load(32, 0x1000, 0x1000, a =>
        {
            a.mov(edi, 0xABCD_0000);                                             // 0x1000, 5 bytes
            a.call(0x3000UL);                                                    // 0x1005, 5 bytes
            a.AddInstruction(Instruction.CreateBranch(Code.Call_rel16, 0x3100));  // 0x100A, 4 bytes
            a.mov(edx, esp);                                                     // 0x100E
            a.hlt();
        });
        g.Load(32, 0x3000, 0x3000, a =>
        {
            a.mov(ebx, esp);
            a.pop(esi); a.push(esi);
            a.ret();
        });
        g.Load(32, 0x3100, 0x3100, a =>
        {
            a.mov(ecx, esp);
            a.pop(di); a.push(di);
            a.AddInstruction(Instruction.Create(Code.Retnw));                     // 66 C3
        });
        g.Cpu.SetFlat32(0x1000, 0x80000);
        g.RunToHlt();
        Assert.Equal(0x7FFFCUL, g.Reg(R.Bx));
        Assert.Equal(0x100AUL, g.Reg(R.Si));
        Assert.Equal(0x7FFFEUL, g.Reg(R.Cx));
        Assert.Equal(0xABCD_100EUL, g.Reg(R.Di));
        Assert.Equal(0x80000UL, g.Reg(R.Dx));
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_push_and_pop_with_operand_size_prefix(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(eax, 0x1122_3344);
            a.push(eax);     // ESP 80000 -> 7FFFC
            a.push(ax);      // 66 50 -> 7FFFA
            a.mov(ebp, esp);
            a.pop(bx);
            a.pop(ecx);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x7FFFAUL, g.Reg(R.Bp));
        Assert.Equal(0x3344UL, g.Read(0x7FFFA, 2));
        Assert.Equal(0x1122_3344UL, g.Read(0x7FFFC, 4));
        Assert.Equal(0x3344UL, g.Reg(R.Bx));
        Assert.Equal(0x1122_3344UL, g.Reg(R.Cx));
        Assert.Equal(0x80000UL, g.Reg(R.Sp));
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_loop_counts_CX_or_ECX_by_address_size(int tier)
    {
        // SDM LOOP: the count register is CX with a 16-bit address size, ECX with 0x67 (32-bit).
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            a.mov(ecx, 0x0005_0003);
            a.xor(edi, edi);
            a.Label(ref l1);
            a.inc(edi);
            a.loop(l1);                 // E2: CX 3 -> 0, upper ECX untouched
            a.mov(ebx, ecx);
            a.mov(ecx, 0x0001_0002);
            a.xor(esi, esi);
            a.Label(ref l2);
            a.inc(esi);
            a.db(0x67);
            a.loop(l2);                 // 67 E2: ECX counts 0x10002 iterations
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(3UL, g.Reg(R.Di) & 0xFFFF_FFFF);
        Assert.Equal(0x0005_0000UL, g.Reg(R.Bx) & 0xFFFF_FFFF);
        Assert.Equal(0x1_0002UL, g.Reg(R.Si) & 0xFFFF_FFFF);
        Assert.Equal(0UL, g.Reg(R.Cx) & 0xFFFF_FFFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_loop_with_address_size_prefix_counts_CX(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            var l1 = a.CreateLabel();
            var l2 = a.CreateLabel();
            a.mov(ecx, 0x0005_0003);
            a.xor(edi, edi);
            a.Label(ref l1);
            a.inc(edi);
            a.db(0x67);
            a.loop(l1);                 // 67 E2 in 32-bit code: CX
            a.mov(ebx, ecx);
            a.mov(ecx, 0x0001_0002);
            a.xor(esi, esi);
            a.Label(ref l2);
            a.inc(esi);
            a.loop(l2);                 // E2: ECX
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(3UL, g.Reg(R.Di));
        Assert.Equal(0x0005_0000UL, g.Reg(R.Bx));
        Assert.Equal(0x1_0002UL, g.Reg(R.Si));
        Assert.Equal(0UL, g.Reg(R.Cx));
    }

    static void JcxzProgram(Assembler a)
    {
        var a1 = a.CreateLabel();
        var a2 = a.CreateLabel();
        var a3 = a.CreateLabel();
        a.xor(ebx, ebx);
        a.mov(ecx, 0x0001_0000);
        a.jcxz(a1);          // CX = 0: taken
        a.or(bl, 1);
        a.Label(ref a1);
        a.jecxz(a2);         // ECX != 0: not taken
        a.or(bl, 2);
        a.Label(ref a2);
        a.xor(ecx, ecx);
        a.jecxz(a3);         // taken
        a.or(bl, 4);
        a.Label(ref a3);
        a.hlt();
    }

    [Theory, MemberData(nameof(All))]
    public void Real_mode_jcxz_and_jecxz(int tier)
    {
        // SDM Jcc: JCXZ tests CX, JECXZ tests ECX (address size; Iced adds 0x67 as needed).
        using var g = Guest.Real(tier, 0x1000, 0x100, 0x8000, JcxzProgram);
        g.RunToHlt();
        Assert.Equal(2UL, g.Reg(R.Bx) & 0xFF);
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_jcxz_and_jecxz(int tier)
    {
        using var g = Guest.Flat32(tier, JcxzProgram);
        g.RunToHlt();
        Assert.Equal(2UL, g.Reg(R.Bx) & 0xFF);
    }

    public static TheoryData<int, byte[]> WrapJumps
    {
        get
        {
            var d = new TheoryData<int, byte[]>();
            foreach (int tier in new[] { Tiers.Interpret, Tiers.CompileFirst, Tiers.Tiered })
            {
                d.Add(tier, [0xEB, 0x20]);             // JMP rel8 at FFF0: (FFF2 + 20h) AND FFFFh = 0012h
                d.Add(tier, [0xE9, 0x1F, 0x00]);       // JMP rel16 at FFF0: (FFF3 + 1Fh) AND FFFFh = 0012h
                d.Add(tier, [0xF9, 0x72, 0x1F, 0x90]); // STC; JB rel8 at FFF1: (FFF3 + 1Fh) AND FFFFh = 0012h
            }
            return d;
        }
    }

    [Theory, MemberData(nameof(WrapJumps))]
    public void Real_mode_near_jump_wraps_IP_at_64K(int tier, byte[] jump)
    {
        // SDM JMP/Jcc: with a 16-bit operand size, EIP <- tempEIP AND 0000FFFFH.
        using var g = new Guest(tier);
        g.Ram.Write(0x1FFF0, jump);                                   // 1000:FFF0
        g.Load(16, 0x10012, 0x12, a => { a.mov(ax, 0x1234); a.hlt(); }); // 1000:0012
        g.Load(16, 0x20012, 0x10012, a => { a.mov(ax, 0x0BAD); a.hlt(); }); // linear 1000h*16 + 10012h if unwrapped
        g.Cpu.SetReal(0x1000, 0xFFF0, 0x8000);
        g.RunToHlt();
        Assert.Equal(0x1234UL, g.Reg(R.Ax) & 0xFFFF);
        Assert.Equal(0x16UL, g.Rip);
    }

    [Theory, MemberData(nameof(All))]
    public void Flat32_jump_with_16_bit_operand_size_truncates_EIP(int tier)
    {
        // 66 E9 rel16 at 0x11000: tempEIP = 0x11004 + 0x0C = 0x11010, EIP = 0x1010 (SDM JMP).
        using var g = new Guest(tier);
        g.Ram.Write(0x11000, new byte[] { 0x66, 0xE9, 0x0C, 0x00 });
        g.Load(32, 0x1010, 0x1010, a => { a.mov(eax, 1); a.hlt(); });
        g.Load(32, 0x11010, 0x11010, a => { a.mov(eax, 2); a.hlt(); });
        g.Cpu.SetFlat32(0x11000, 0x80000);
        g.RunToHlt();
        Assert.Equal(1UL, g.Reg(R.Ax));
        Assert.Equal(0x1016UL, g.Rip);
    }
}
