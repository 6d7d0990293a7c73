using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Fpu;

/// <summary>
/// Tier 1's x87 lowering (InstEmit.X87.cs and the Interp.X87Fast* entry points) against tier 0 in real mode, segmented
/// 32-bit protected mode and 64-bit mode. The FP differential groups hold both tiers to the host, but only in flat
/// 64-bit code; here the oracle is tier 0 and what differs by mode is checked: FIP and FDP at the code's width, FDP as
/// the offset within a based segment, FCS/FDS, m80 operands, and the stores' exactness when they fault.
/// </summary>
public unsafe class X87TierTests
{
    const ulong DataBase = 0x20000;
    const int In = 0x100, Out = 0x200, Env = 0x300, Fx = 0x400, DataSize = 0x600;

    public static readonly TheoryData<int> Modes = new() { 16, 32, 64 };

    /// <summary>Memory operands [base + off] in the code's address size (BX, EBX or RBX holds the data offset 0 or base).</summary>
    sealed class Operands(int bits)
    {
        AssemblerMemoryOperand At(AssemblerMemoryOperandFactory f, int off) => bits switch
        {
            16 => f[bx + off],
            32 => f[ebx + off],
            _ => f[rbx + off],
        };
        public AssemblerMemoryOperand W(int off) => At(__word_ptr, off);
        public AssemblerMemoryOperand D(int off) => At(__dword_ptr, off);
        public AssemblerMemoryOperand Q(int off) => At(__qword_ptr, off);
        public AssemblerMemoryOperand T(int off) => At(__tword_ptr, off);
        public AssemblerMemoryOperand B(int off) => At(__byte_ptr, off);
        public AssemblerMemoryOperand M(int off) => At(__, off);
    }

    /// <summary>A guest whose data area (DataBase) is reached through DS: DS based there (real mode, 32-bit) or RBX = DataBase.</summary>
    static Guest Make(int bits, int tier, Action<Assembler, Operands> body, bool profile = false)
    {
        var options = profile ? Tiers.Options(tier) with { ProfileFallbacks = true } : null;
        var g = new Guest(tier, options: options);
        var m = new Operands(bits);
        void Build(Assembler a)
        {
            if (bits == 64) a.mov(rbx, DataBase);
            else if (bits == 32) a.xor(ebx, ebx);
            else a.xor(bx, bx);
            body(a, m);
            a.hlt();
        }
        switch (bits)
        {
            case 16:
                g.Load(16, 0x1000, 0x0000, Build);
                g.Cpu.SetReal(0x0100, 0x0000, 0xFFF0);
                g.S->Ds.Selector = (ushort)(DataBase >> 4);
                g.S->Ds.Base = DataBase;
                break;
            case 32:
                // CS based at 0x1000: tier 1 compiles the code segmented (per-access bases and limits) from its first run.
                g.Load(32, 0x1000, 0x0000, Build);
                g.Cpu.SetFlat32(0x0000, 0x80000);
                g.S->Cs.Base = 0x1000;
                g.S->Ds.Selector = 0x18;
                g.S->Ds.Base = DataBase;
                break;
            default:
                g.Load(64, 0x1000, 0x1000, Build);
                g.Cpu.SetFlat64(0x1000, 0x80000);
                g.S->Ds.Selector = 0x18;
                break;
        }
        var inputs = g.Ram.Span(DataBase + In, 0x100);
        BitConverter.TryWriteBytes(inputs[0x00..], 1.5);
        BitConverter.TryWriteBytes(inputs[0x08..], 1e300 / 3);
        BitConverter.TryWriteBytes(inputs[0x10..], 2.5f);
        BitConverter.TryWriteBytes(inputs[0x14..], 0.3f);
        BitConverter.TryWriteBytes(inputs[0x18..], (short)-7);
        BitConverter.TryWriteBytes(inputs[0x1C..], 123456);
        BitConverter.TryWriteBytes(inputs[0x20..], (1L << 40) + 3);
        BitConverter.TryWriteBytes(inputs[0x28..], 0xC90F_DAA2_2168_C235UL); // pi as m80
        BitConverter.TryWriteBytes(inputs[0x30..], (ushort)0x4000);
        BitConverter.TryWriteBytes(inputs[0x40..], (ushort)0x027F); // FCW: all masked, 53-bit precision
        BitConverter.TryWriteBytes(inputs[0x48..], 1e30);
        return g;
    }

    /// <summary>Every lowered form once, with the state (flags, FSW, FNSTENV's pointers) captured along the way.</summary>
    static void Mixed(Assembler a, Operands m)
    {
        a.fninit();
        a.fldcw(m.W(In + 0x40));
        a.fld(m.Q(In + 0x00));
        a.fld(m.D(In + 0x10));
        a.fild(m.W(In + 0x18));
        a.fild(m.D(In + 0x1C));
        a.fild(m.Q(In + 0x20));
        a.fld(m.T(In + 0x28));
        a.fadd(m.Q(In + 0x08));
        a.fmul(st0, st2);
        a.fsubrp(st1, st0);
        a.fdiv(m.D(In + 0x14));
        a.fnstenv(m.M(Env)); // pointers of FDIV m32 (FNSTENV masks all exceptions: they are already)
        a.fxch(st0, st3);
        a.fchs();
        a.fabs();
        a.fld1();
        a.fldz();
        a.faddp(st1, st0);
        a.fcomi(st0, st1);
        a.lahf();
        a.mov(m.B(Out + 0x60), ah);
        a.fucomip(st0, st2);
        a.lahf();
        a.mov(m.B(Out + 0x61), ah);
        a.fcom(m.Q(In + 0x00));
        a.fnstsw(ax);
        a.mov(m.W(Out + 0x62), ax);
        a.fnstenv(m.M(Env + 0x20)); // pointers of FCOM m64
        a.fiadd(m.D(In + 0x1C));
        a.fidivr(m.W(In + 0x18));
        a.fld(st2);
        a.fist(m.W(Out + 0x00));
        a.fistp(m.D(Out + 0x04));
        a.fisttp(m.Q(Out + 0x08));
        a.fst(m.D(Out + 0x10));
        a.fstp(m.Q(Out + 0x18));
        a.fstp(m.T(Out + 0x20));
        a.fnstenv(m.M(Env + 0x40)); // pointers of FSTP m80
        a.fstp(st1);
        a.ftst();
        a.fnstsw(ax);
        a.mov(m.W(Out + 0x64), ax);
        a.fnstcw(m.W(Out + 0x66));
        a.fxsave(m.M(Fx));
    }

    static (byte[] Data, ulong[] Gprs, ulong Flags, long[]? TierZero, long Interpreted) Run(int bits, int tier, Action<Assembler, Operands> body, bool expectHlt = true)
    {
        using var g = Make(bits, tier, body, profile: tier != Tiers.Interpret);
        var exit = g.Run();
        if (expectHlt) Assert.True(exit == ExitReason.Hlt, $"{bits}-bit tier {tier}: {exit} {g.Cpu.ExitMessage} at 0x{g.Rip:x}");
        var gprs = new ulong[16];
        for (int k = 0; k < 16; k++) gprs[k] = g.Reg(k);
        return (g.Ram.Span(DataBase, DataSize).ToArray(), gprs, Flags.Get(g.S) & RFlags.Status, g.Cpu.TierZeroCalls?.ToArray(),
            g.Cpu.InterpretedBlocks);
    }

    static void AssertSameAsTierZero(int bits, Action<Assembler, Operands> body, params Code[] tierZeroAllowed)
    {
        var t0 = Run(bits, Tiers.Interpret, body);
        var t1 = Run(bits, Tiers.CompileFirst, body);
        Assert.Equal(0, t1.Interpreted); // every block ran translated
        for (int k = 0; k < DataSize; k++)
            Assert.True(t0.Data[k] == t1.Data[k], $"{bits}-bit: data +0x{k:x}: tier 0 {t0.Data[k]:x2}, tier 1 {t1.Data[k]:x2}");
        Assert.Equal(t0.Gprs, t1.Gprs);
        Assert.Equal(t0.Flags, t1.Flags);
        for (int c = 0; c < t1.TierZero!.Length; c++)
            Assert.True(t1.TierZero[c] == 0 || Array.IndexOf(tierZeroAllowed, (Code)c) >= 0, $"{bits}-bit: tier 1 called tier 0 for {(Code)c}");
    }

    [Theory, MemberData(nameof(Modes))]
    public void Every_lowered_form_matches_tier_zero_with_the_pointers_of_the_mode(int bits)
    {
        AssertSameAsTierZero(bits, Mixed, Code.Hlt, Code.Fninit, Code.Fnstenv_m14byte, Code.Fnstenv_m28byte, Code.Fxsave_m512byte);
        var t1 = Run(bits, Tiers.CompileFirst, Mixed);
        Assert.NotEqual(0, BitConverter.ToUInt16(t1.Data, Out + 0x20 + 8)); // FSTP m80 stored its sign and exponent
        if (bits == 16) return; // the real-mode environment holds 20-bit linear pointers (tier 0's FNSTENV)
        // The pointers FNSTENV stored after FDIV m32: FDP is the operand's offset in DS (not its linear address), FDS is DS.
        ulong fdp = BitConverter.ToUInt32(t1.Data, Env + 20);
        Assert.Equal(bits == 64 ? DataBase + In + 0x14 : In + 0x14, fdp);
        Assert.Equal(0x18, BitConverter.ToUInt16(t1.Data, Env + 24));
    }

    [Theory, MemberData(nameof(Modes))]
    public void Stack_faults_and_unmasked_exceptions_go_to_tier_zero_with_the_same_result(int bits)
    {
        AssertSameAsTierZero(bits, (a, m) =>
        {
            a.fninit();
            for (int k = 0; k < 9; k++) a.fld1(); // the ninth overflows: masked stack fault, the indefinite is pushed
            a.fstp(st0);
            a.fxch(st0, st7);                         // ST(7) empty after the pop: underflow
            a.fnstsw(ax);
            a.mov(m.W(Out + 0x00), ax);
            a.fninit();
            a.fldcw(m.W(In + 0x40));
            a.fld(m.Q(In + 0x48));               // 1e30
            a.mov(m.W(Out + 0x10), 0x027E);     // IE unmasked
            a.fldcw(m.W(Out + 0x10));
            a.fistp(m.D(Out + 0x20));            // too big: unmasked IE, nothing stored, nothing popped, ES set
            a.fnstsw(ax);
            a.mov(m.W(Out + 0x02), ax);
            a.fnclex();
            a.fistp(m.W(Out + 0x30));            // IE again, after FNCLEX
            a.fnstsw(ax);
            a.mov(m.W(Out + 0x04), ax);
            a.fxsave(m.M(Fx));
        }, Code.Hlt, Code.Fninit, Code.Fnclex, Code.Fld1, Code.Fxch_st0_sti, Code.Fistp_m32int, Code.Fistp_m16int, Code.Fxsave_m512byte);
    }

    /// <summary>An x87 instruction that faults (#NM: CR0.TS set) reports the flags of before it, even when a later
    /// instruction overwrites them: tier 1 must keep the CMP's flags for the lowered FADD's tier-0 path.</summary>
    [Theory]
    [InlineData(Tiers.Interpret)]
    [InlineData(Tiers.CompileFirst)]
    public void A_faulting_x87_instruction_sees_the_flags_of_before_it(int tier)
    {
        using var g = Make(64, tier, (a, m) =>
        {
            a.mov(eax, 1);
            a.mov(ecx, 2);
            a.cmp(eax, ecx);   // CF = SF = 1, ZF = 0
            a.fadd(st0, st1);  // #NM
            a.add(ecx, 1);     // overwrites every status flag
        });
        g.S->Cr0 |= Cr0.TS;
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.NM, g.Cpu.ExitVector);
        Assert.Equal(RFlags.CF | RFlags.SF | RFlags.PF | RFlags.AF, Flags.Get(g.S) & RFlags.Status);
    }

    /// <summary>A store whose write faults (here: past DS's limit) leaves the x87 state as it was, in both tiers.</summary>
    [Theory]
    [InlineData(Tiers.Interpret, 4)]
    [InlineData(Tiers.CompileFirst, 4)]
    [InlineData(Tiers.Interpret, 10)]
    [InlineData(Tiers.CompileFirst, 10)]
    public void A_store_past_the_segment_limit_faults_with_the_x87_state_unchanged(int tier, int size)
    {
        using var g = Make(32, tier, profile: tier != Tiers.Interpret, body: (a, m) =>
        {
            a.fninit();
            a.fld(m.Q(In + 0x00));
            a.fld1();
            if (size == 4) a.fstp(m.D(0xFFE)); // bytes 0xFFE..0x1001: the last two are outside
            else a.fstp(m.T(0xFF8));           // bytes 0xFF8..0x1001
        });
        g.S->Ds.Base = DataBase + 0x800; // the limit mid-page, so no page-crossing check can stand in for the limit check
        g.S->Ds.Limit = 0xFFF;
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(Vector.GP, g.Cpu.ExitVector);
        if (tier != Tiers.Interpret) Assert.Equal(0, g.Cpu.InterpretedBlocks); // the store ran translated
        if (g.Cpu.TierZeroCalls is { } calls) Assert.Equal(0, calls[(int)(size == 4 ? Code.Fstp_m32fp : Code.Fstp_m80fp)]); // tier 1's own check
        Assert.Equal(6, (g.S->FpuStatus >> 11) & 7); // TOP: two pushes, no pop
        Assert.Equal(0xC0, g.S->FpuTag);              // ST(0) and ST(1) still full
        for (int k = 0xFF8; k < 0x1000; k++) Assert.Equal(0, g.Ram.Span(DataBase + 0x800 + (ulong)k, 1)[0]);
    }
}
