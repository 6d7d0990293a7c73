using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using static DynaSmp.Tests.Segmentation.SegMachine;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Segmentation;

/// <summary>Segment limit and type checks on data and stack accesses in protected mode (SDM Vol. 3A 5.3
/// "Limit Checking", 5.4 "Type Checking"): expand-up and expand-down limits, #SS(0) for SS, read-only and
/// execute-only segments, null DS, REP string instructions faulting part-way.</summary>
public unsafe class LimitCheckTests
{
    public static readonly TheoryData<int> Tiers2 = new() { Tiers.Interpret, Tiers.CompileFirst };

    const ulong DataBase = 0x20000;

    /// <summary>Address of the instruction that follows <paramref name="prefix"/> when assembled at 0x1000.</summary>
    static ulong After(Action<Assembler> prefix)
    {
        var a = new Assembler(32);
        prefix(a);
        var w = new Writer();
        a.Assemble(w, 0x1000);
        return 0x1000 + (ulong)w.Count;
    }

    sealed class Writer : CodeWriter
    {
        public int Count;
        public override void WriteByte(byte value) => Count++;
    }

    static void AssertFault(Guest g, int vector, ulong rip)
    {
        var r = g.Run();
        Assert.True(r == ExitReason.Exception, $"expected an exception, got {r} at 0x{g.Rip:x}");
        Assert.Equal(vector, g.Cpu.ExitVector);
        Assert.Equal(0UL, g.Cpu.ExitErrorCode);
        Assert.Equal(rip, g.Rip);
    }

    /// <summary>Flat 32-bit guest whose DS is based at DataBase with limit 0xFFF (byte granular, expand-up).</summary>
    static Guest SmallDs(int tier, Action<Assembler> build)
    {
        var g = Guest.Flat32(tier, build);
        g.S->Ds.Base = DataBase;
        g.S->Ds.Limit = 0xFFF;
        return g;
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Expand_up_last_byte_is_accessible_and_one_past_faults_without_state_change(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(ebx, 0x55u);
            a.mov(al, __byte_ptr[0xFFF]);
        }
        using var g = SmallDs(tier, a =>
        {
            Prefix(a);
            a.mov(__byte_ptr[0x1000], bl);
            a.hlt();
        });
        g.Ram.Span(DataBase + 0xFFF, 2)[0] = 0xA7;
        g.Ram.Span(DataBase + 0xFFF, 2)[1] = 0x11;
        AssertFault(g, Vector.GP, After(Prefix));
        Assert.Equal(0xA7UL, g.Reg(R.Ax) & 0xFF);
        Assert.Equal(0x11UL, g.Read(DataBase + 0x1000, 1)); // the faulting store wrote nothing
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Dword_straddling_the_limit_faults(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(ecx, __dword_ptr[0xFFC]); // bytes 0xFFC..0xFFF: inside
            a.mov(edx, 0x1234u);
        }
        using var g = SmallDs(tier, a =>
        {
            Prefix(a);
            a.mov(edx, __dword_ptr[0xFFD]); // bytes 0xFFD..0x1000: the last is outside
            a.hlt();
        });
        g.WriteU64(DataBase + 0xFF8, 0x8877_6655_4433_2211);
        AssertFault(g, Vector.GP, After(Prefix));
        Assert.Equal(0x8877_6655UL, g.Reg(R.Cx));
        Assert.Equal(0x1234UL, g.Reg(R.Dx));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Read_modify_write_past_the_limit_faults_before_flags_change(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(eax, 1u);
            a.add(eax, 1); // flags of 1 + 1: ZF clear
        }
        using var g = SmallDs(tier, a =>
        {
            Prefix(a);
            a.sub(__word_ptr[0xFFF], 2); // ZF would be set if it ran with [0xFFF] = 2
            a.hlt();
        });
        AssertFault(g, Vector.GP, After(Prefix));
        Assert.Equal(0UL, Flags.Get(g.S) & RFlags.ZF);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Ss_based_operand_past_the_limit_is_SS_fault(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(ebp, 0x7FFFCu);
            a.mov(eax, __dword_ptr[ebp]); // SS:[0x7FFFC..0x7FFFF]: inside
        }
        using var g = Guest.Flat32(tier, a =>
        {
            Prefix(a);
            a.mov(eax, __dword_ptr[ebp + 1]); // default segment SS (EBP base)
            a.hlt();
        });
        g.S->Ss.Limit = 0x7FFFF;
        AssertFault(g, Vector.SS, After(Prefix));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Ds_override_of_an_ebp_operand_is_GP_not_SS(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(ebp, 0x1000u);
            a.mov(eax, __dword_ptr.ds[ebp]);
            a.hlt();
        });
        g.S->Ds.Limit = 0xFFF;
        AssertFault(g, Vector.GP, 0x1005);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Push_and_call_below_an_expand_down_stack_limit_are_SS_fault(int tier)
    {
        // Expand-down 32-bit stack (type 7, B = 1) with limit 0x7FFF: valid offsets 0x8000..0xFFFFFFFF.
        void Prefix(Assembler a)
        {
            a.mov(esp, 0x8004u);
            a.push(eax); // writes 0x8000..0x8003
        }
        using var g = Guest.Flat32(tier, a =>
        {
            Prefix(a);
            a.push(eax); // would write 0x7FFC..0x7FFF
            a.hlt();
        });
        g.S->Ss.Attributes = 0x97 | SegmentCache.DefaultBig | SegmentCache.Granularity;
        g.S->Ss.Limit = 0x7FFF;
        AssertFault(g, Vector.SS, After(Prefix));
        Assert.Equal(0x8000UL, g.Reg(R.Sp));

        // A near CALL at the same point faults on its push with RIP at the CALL.
        using var h = Guest.Flat32(tier, a =>
        {
            var target = a.CreateLabel();
            Prefix(a);
            a.call(target);
            a.Label(ref target);
            a.hlt();
        });
        h.S->Ss.Attributes = 0x97 | SegmentCache.DefaultBig | SegmentCache.Granularity;
        h.S->Ss.Limit = 0x7FFF;
        AssertFault(h, Vector.SS, After(Prefix));
        Assert.Equal(0x8000UL, h.Reg(R.Sp));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Pop_and_ret_past_an_expand_up_stack_limit_are_SS_fault(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(esp, 0x7FFEu);
        }
        using var g = Guest.Flat32(tier, a =>
        {
            Prefix(a);
            a.pop(eax); // 0x7FFE..0x8001 with limit 0x7FFF
            a.hlt();
        });
        g.S->Ss.Limit = 0x7FFF;
        AssertFault(g, Vector.SS, After(Prefix));
        Assert.Equal(0x7FFEUL, g.Reg(R.Sp));

        using var h = Guest.Flat32(tier, a =>
        {
            Prefix(a);
            a.ret();
        });
        h.S->Ss.Limit = 0x7FFF;
        AssertFault(h, Vector.SS, After(Prefix));
        Assert.Equal(0x7FFEUL, h.Reg(R.Sp));
    }

    [Theory]
    [InlineData(Tiers.Interpret, false)]
    [InlineData(Tiers.Interpret, true)]
    [InlineData(Tiers.CompileFirst, false)]
    [InlineData(Tiers.CompileFirst, true)]
    public void Expand_down_data_segment_bounds(int tier, bool big)
    {
        // Type 7 (expand-down, writable) with limit 0xFFF: offsets 0x1000..0xFFFF (B = 0) or ..0xFFFFFFFF (B = 1).
        void Prefix(Assembler a)
        {
            a.mov(al, __byte_ptr[0x1000]);     // lowest valid offset
            a.mov(cx, __word_ptr[0xFFFE]);     // 0xFFFE..0xFFFF: valid either way
            a.mov(ebx, 0x10000u);
            a.mov(dl, __byte_ptr[ebx]);        // valid only with B = 1
            a.mov(esi, 0xFFFu);
        }
        using var g = Guest.Flat32(tier, a =>
        {
            Prefix(a);
            a.mov(ah, __byte_ptr[esi]);        // Limit itself: below the valid range
            a.hlt();
        });
        g.S->Ds.Base = 0x100000;
        g.S->Ds.Limit = 0xFFF;
        g.S->Ds.Attributes = 0x97 | (big ? SegmentCache.DefaultBig : 0);
        g.Ram.Span(0x101000, 1)[0] = 0x3C;
        g.Ram.Span(0x110000, 1)[0] = 0x5A;
        if (big)
        {
            AssertFault(g, Vector.GP, After(Prefix));
            Assert.Equal(0x3CUL, g.Reg(R.Ax) & 0xFF);
            Assert.Equal(0x5AUL, g.Reg(R.Dx) & 0xFF);
        }
        else
        {
            // B = 0: offset 0x10000 is above the 0xFFFF upper bound.
            AssertFault(g, Vector.GP, After(a =>
            {
                a.mov(al, __byte_ptr[0x1000]);
                a.mov(cx, __word_ptr[0xFFFE]);
                a.mov(ebx, 0x10000u);
            }));
            Assert.Equal(0x3CUL, g.Reg(R.Ax) & 0xFF);
        }
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Word_at_the_top_of_a_16_bit_expand_down_segment_faults(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.mov(ax, __word_ptr[0xFFFF]); // 0xFFFF..0x10000: the upper bound is 0xFFFF with B = 0
            a.hlt();
        });
        g.S->Ds.Base = 0x100000;
        g.S->Ds.Limit = 0xFFF;
        g.S->Ds.Attributes = 0x97;
        AssertFault(g, Vector.GP, 0x1000);
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Write_to_a_read_only_data_segment_is_GP(int tier)
    {
        void Prefix(Assembler a)
        {
            a.mov(eax, (uint)ReadOnly);
            a.mov(ds, ax);
            a.mov(ecx, __dword_ptr[0x3000]); // reading is allowed
        }
        using var g = Protected32(tier, a =>
        {
            Prefix(a);
            a.inc(__dword_ptr[0x3000]);
            a.hlt();
        });
        g.WriteU64(0x3000, 41);
        AssertFault(g, Vector.GP, After(Prefix));
        Assert.Equal(41UL, g.Reg(R.Cx));
        Assert.Equal(41UL, g.Read(0x3000, 4));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Read_through_CS_of_an_execute_only_segment_is_GP(int tier)
    {
        using var g = Protected32(tier, a =>
        {
            a.mov(eax, __dword_ptr.cs[0x3000]);
            a.hlt();
        });
        g.S->Cs.Attributes = 0x98 | SegmentCache.DefaultBig | SegmentCache.Granularity; // execute-only
        AssertFault(g, Vector.GP, 0x1000);

        // Readable code: the read works, a write through CS does not.
        using var h = Protected32(tier, a =>
        {
            a.mov(eax, __dword_ptr.cs[0x3000]);
            a.mov(__dword_ptr.cs[0x3000], eax);
            a.hlt();
        });
        h.WriteU64(0x3000, 0x1122_3344);
        AssertFault(h, Vector.GP, After(a => a.mov(eax, __dword_ptr.cs[0x3000])));
        Assert.Equal(0x1122_3344UL, h.Reg(R.Ax));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Access_through_a_null_DS_is_GP(int tier)
    {
        void Prefix(Assembler a)
        {
            a.xor(eax, eax);
            a.mov(ds, ax); // a null selector loads without a fault
            a.mov(ecx, __dword_ptr.es[0x3000]);
        }
        using var g = Protected32(tier, a =>
        {
            Prefix(a);
            a.mov(edx, __dword_ptr[0x3000]);
            a.hlt();
        });
        g.WriteU64(0x3000, 7);
        AssertFault(g, Vector.GP, After(Prefix));
        Assert.Equal(7UL, g.Reg(R.Cx));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Rep_movsb_faults_at_the_first_byte_past_the_ES_limit(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.cld();
            a.rep.movsb();
            a.hlt();
        });
        g.S->Es.Limit = 0x30FF;
        g.Cpu.Gpr(R.Si) = 0x4000;
        g.Cpu.Gpr(R.Di) = 0x30F0;
        g.Cpu.Gpr(R.Cx) = 0x40;
        for (int k = 0; k < 0x40; k++) g.Ram.Span(0x4000 + (ulong)k, 1)[0] = (byte)(k + 1);
        AssertFault(g, Vector.GP, 0x1001);
        // 16 bytes (0x30F0..0x30FF) were copied; the 17th is outside.
        Assert.Equal(0x30UL, g.Reg(R.Cx));
        Assert.Equal(0x4010UL, g.Reg(R.Si));
        Assert.Equal(0x3100UL, g.Reg(R.Di));
        Assert.Equal(16UL, g.Read(0x30FF, 1));
        Assert.Equal(0UL, g.Read(0x3100, 1));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Rep_stosd_element_straddling_the_limit_faults(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.cld();
            a.rep.stosd();
            a.hlt();
        });
        g.S->Es.Limit = 0x30FD;
        g.Cpu.Gpr(R.Ax) = 0xDEAD_BEEF;
        g.Cpu.Gpr(R.Di) = 0x30F8;
        g.Cpu.Gpr(R.Cx) = 4;
        AssertFault(g, Vector.GP, 0x1001);
        Assert.Equal(3UL, g.Reg(R.Cx));
        Assert.Equal(0x30FCUL, g.Reg(R.Di));
        Assert.Equal(0xDEAD_BEEFUL, g.Read(0x30F8, 4));
        Assert.Equal(0UL, g.Read(0x30FC, 4));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Rep_lodsb_through_an_SS_override_faults_at_the_SS_limit_with_SS_fault(int tier)
    {
        using var g = Guest.Flat32(tier, a =>
        {
            a.cld();
            a.rep.lodsb(); // source segment SS (override below)
            a.hlt();
        });
        // Patch in an SS override: rep ss lodsb.
        g.Ram.Write(0x1001, new byte[] { 0xF3, 0x36, 0xAC, 0xF4 });
        g.S->Ss.Limit = 0x4001;
        g.Cpu.Gpr(R.Si) = 0x4000;
        g.Cpu.Gpr(R.Cx) = 5;
        AssertFault(g, Vector.SS, 0x1001);
        Assert.Equal(3UL, g.Reg(R.Cx));
        Assert.Equal(0x4002UL, g.Reg(R.Si));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void No_limit_checks_in_64_bit_mode(int tier)
    {
        using var g = Guest.Flat64(tier, a =>
        {
            a.mov(eax, __dword_ptr[0x3000]);
            a.push(rax);
            a.hlt();
        });
        g.S->Ds.Limit = 0xFFF;
        g.S->Ss.Limit = 0xFFF;
        g.WriteU64(0x3000, 99);
        g.RunToHlt();
        Assert.Equal(99UL, g.Reg(R.Ax));
    }

    [Theory]
    [MemberData(nameof(Tiers2))]
    public void Real_mode_keeps_the_unchecked_access(int tier)
    {
        using var g = Guest.Real(tier, 0x100, 0, 0x8000, a =>
        {
            a.mov(ax, __word_ptr[0x3000]);
            a.hlt();
        });
        g.S->Ds.Limit = 0xFFF;
        g.WriteU64(0x1000 + 0x3000, 0x4242);
        g.RunToHlt();
        Assert.Equal(0x4242UL, g.Reg(R.Ax) & 0xFFFF);
    }
}
