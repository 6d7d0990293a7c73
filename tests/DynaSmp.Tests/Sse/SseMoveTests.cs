using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using V = System.Runtime.Intrinsics.Vector128<ulong>;

namespace DynaSmp.Tests.SseInsns;

/// <summary>Data movement against the host: the host executes the same load/store on a host buffer.</summary>
public sealed unsafe class SseMoveTests
{
    const ulong D = SseMachine.DataAddr;
    static MemoryOperand AtRax => new(Register.RAX);

    static Instruction I(Code c, Register a, Register b) => Instruction.Create(c, a, b);
    static Instruction I(Code c, Register a, in MemoryOperand b) => Instruction.Create(c, a, b);
    static Instruction I(Code c, in MemoryOperand a, Register b) => Instruction.Create(c, a, b);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Movd_movq_between_gprs_and_xmm_zero_extend(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            a.AddInstruction(I(Code.Movd_xmm_rm32, Register.XMM1, Register.ECX));
            a.AddInstruction(I(Code.Movq_xmm_rm64, Register.XMM10, Register.RCX));
            a.AddInstruction(I(Code.Movd_rm32_xmm, Register.EDX, Register.XMM2));
            a.AddInstruction(I(Code.Movq_rm64_xmm, Register.R8, Register.XMM2));
            a.AddInstruction(I(Code.Movq_xmm_xmmm64, Register.XMM3, Register.XMM2));
        });
        var rng = new SseRandom(1 + tier);
        for (int n = 0; n < 20; n++)
        {
            ulong rcx = rng.U64();
            V x = rng.Vec();
            m.SetXmm(1, rng.Vec()); m.SetXmm(10, rng.Vec()); m.SetXmm(2, x); m.SetXmm(3, rng.Vec());
            m.Gpr(1) = rcx; m.Gpr(2) = ulong.MaxValue; m.Gpr(8) = 0;
            m.RunToHlt();
            Assert.Equal(Sse2.ConvertScalarToVector128UInt32((uint)rcx).AsUInt64(), m.GetXmm(1));
            Assert.Equal(Sse2.X64.ConvertScalarToVector128UInt64(rcx), m.GetXmm(10));
            Assert.Equal((ulong)Sse2.ConvertToUInt32(x.AsUInt32()), m.Gpr(2));
            Assert.Equal(Sse2.X64.ConvertToUInt64(x), m.Gpr(8));
            Assert.Equal(Sse2.MoveScalar(x), m.GetXmm(3));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Scalar_and_half_loads_match_the_host(int tier)
    {
        // Loads from [rax] (misaligned on purpose: 32/64-bit memory forms have no alignment requirement).
        (Code code, Func<V, ulong, V> oracle)[] loads =
        [
            (Code.Movd_xmm_rm32, (d, p) => Sse2.LoadScalarVector128((uint*)p).AsUInt64()),
            (Code.Movq_xmm_rm64, (d, p) => Sse2.LoadScalarVector128((ulong*)p)),
            (Code.Movq_xmm_xmmm64, (d, p) => Sse2.LoadScalarVector128((ulong*)p)),
            (Code.Movss_xmm_xmmm32, (d, p) => Sse.LoadScalarVector128((float*)p).AsUInt64()),
            (Code.Movsd_xmm_xmmm64, (d, p) => Sse2.LoadScalarVector128((double*)p).AsUInt64()),
            (Code.Movlps_xmm_m64, (d, p) => Sse.LoadLow(d.AsSingle(), (float*)p).AsUInt64()),
            (Code.Movhps_xmm_m64, (d, p) => Sse.LoadHigh(d.AsSingle(), (float*)p).AsUInt64()),
            (Code.Movlpd_xmm_m64, (d, p) => Sse2.LoadLow(d.AsDouble(), (double*)p).AsUInt64()),
            (Code.Movhpd_xmm_m64, (d, p) => Sse2.LoadHigh(d.AsDouble(), (double*)p).AsUInt64()),
            (Code.Movdqu_xmm_xmmm128, (d, p) => Sse2.LoadVector128((ulong*)p)),
            (Code.Movups_xmm_xmmm128, (d, p) => Sse.LoadVector128((float*)p).AsUInt64()),
            (Code.Movupd_xmm_xmmm128, (d, p) => Sse2.LoadVector128((double*)p).AsUInt64()),
        ];
        var rng = new SseRandom(2 + tier);
        ulong* host = stackalloc ulong[4];
        foreach (var (code, oracle) in loads)
        {
            using var m = new SseMachine(tier, a => a.AddInstruction(I(code, Register.XMM7, AtRax)));
            for (int n = 0; n < 10; n++)
            {
                V d = rng.Vec(), src = rng.Vec();
                ulong addr = D + 0xFF8 + (ulong)rng.Next(8); // some of these cross a page boundary
                m.WriteMem128(addr, src);
                host[0] = src.GetElement(0); host[1] = src.GetElement(1);
                m.SetXmm(7, d);
                m.Gpr(0) = addr;
                m.RunToHlt();
                Assert.True(oracle(d, (ulong)host) == m.GetXmm(7), code.ToString());
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Stores_write_exactly_what_the_host_writes(int tier)
    {
        (Code code, Action<V, ulong> oracle)[] stores =
        [
            (Code.Movd_rm32_xmm, (v, p) => Sse2.StoreScalar((uint*)p, v.AsUInt32())),
            (Code.Movq_rm64_xmm, (v, p) => Sse2.StoreScalar((ulong*)p, v)),
            (Code.Movq_xmmm64_xmm, (v, p) => Sse2.StoreScalar((ulong*)p, v)),
            (Code.Movss_xmmm32_xmm, (v, p) => Sse.StoreScalar((float*)p, v.AsSingle())),
            (Code.Movsd_xmmm64_xmm, (v, p) => Sse2.StoreScalar((double*)p, v.AsDouble())),
            (Code.Movlps_m64_xmm, (v, p) => Sse.StoreLow((float*)p, v.AsSingle())),
            (Code.Movhps_m64_xmm, (v, p) => Sse.StoreHigh((float*)p, v.AsSingle())),
            (Code.Movlpd_m64_xmm, (v, p) => Sse2.StoreLow((double*)p, v.AsDouble())),
            (Code.Movhpd_m64_xmm, (v, p) => Sse2.StoreHigh((double*)p, v.AsDouble())),
            (Code.Movdqu_xmmm128_xmm, (v, p) => Sse2.Store((ulong*)p, v)),
            (Code.Movups_xmmm128_xmm, (v, p) => Sse.Store((float*)p, v.AsSingle())),
            (Code.Movupd_xmmm128_xmm, (v, p) => Sse2.Store((double*)p, v.AsDouble())),
            (Code.Movdqa_xmmm128_xmm, (v, p) => Sse2.StoreAligned((ulong*)p, v)),
            (Code.Movaps_xmmm128_xmm, (v, p) => Sse.StoreAligned((float*)p, v.AsSingle())),
            (Code.Movapd_xmmm128_xmm, (v, p) => Sse2.StoreAligned((double*)p, v.AsDouble())),
            (Code.Movntdq_m128_xmm, (v, p) => Sse2.StoreAlignedNonTemporal((ulong*)p, v)),
            (Code.Movntps_m128_xmm, (v, p) => Sse.StoreAlignedNonTemporal((float*)p, v.AsSingle())),
            (Code.Movntpd_m128_xmm, (v, p) => Sse2.StoreAlignedNonTemporal((double*)p, v.AsDouble())),
        ];
        var rng = new SseRandom(3 + tier);
        byte* host = stackalloc byte[64];
        byte* hostAligned = (byte*)(((ulong)host + 15) & ~15UL);
        foreach (var (code, oracle) in stores)
        {
            bool aligned = code.ToString().Contains("Movdqa") || code.ToString().Contains("Movnt") || code.ToString().Contains("Movap");
            using var m = new SseMachine(tier, a => a.AddInstruction(I(code, AtRax, Register.XMM11)));
            for (int n = 0; n < 10; n++)
            {
                V v = rng.Vec(), fill = rng.Vec();
                int off = aligned ? 16 : 9 + rng.Next(8);
                ulong addr = D + 0xFE0 + (ulong)off; // unaligned ones may cross into the next page
                // Guest and host buffers both start as fill|fill|fill, the store lands at the same offset.
                for (int k = 0; k < 3; k++) m.WriteMem128(D + 0xFE0 + 16 * (ulong)k, fill);
                for (int k = 0; k < 48; k++) hostAligned[k] = fill.AsByte().GetElement(k & 15);
                oracle(v, (ulong)(hostAligned + off));
                m.SetXmm(11, v);
                m.Gpr(0) = addr;
                m.RunToHlt();
                Assert.True(new ReadOnlySpan<byte>(hostAligned, 48).SequenceEqual(m.Mem(D + 0xFE0, 48)), code.ToString());
                Assert.Equal(v, m.GetXmm(11));
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Register_moves_match_the_host(int tier)
    {
        (Code code, Func<V, V, V> oracle)[] moves =
        [
            (Code.Movss_xmm_xmmm32, (d, s) => Sse.MoveScalar(d.AsSingle(), s.AsSingle()).AsUInt64()),
            (Code.Movsd_xmm_xmmm64, (d, s) => Sse2.MoveScalar(d.AsDouble(), s.AsDouble()).AsUInt64()),
            (Code.Movhlps_xmm_xmm, (d, s) => Sse.MoveHighToLow(d.AsSingle(), s.AsSingle()).AsUInt64()),
            (Code.Movlhps_xmm_xmm, (d, s) => Sse.MoveLowToHigh(d.AsSingle(), s.AsSingle()).AsUInt64()),
            (Code.Movdqa_xmm_xmmm128, (d, s) => s),
            (Code.Movdqu_xmm_xmmm128, (d, s) => s),
            (Code.Movaps_xmm_xmmm128, (d, s) => s),
            (Code.Movups_xmmm128_xmm, (d, s) => s),
            (Code.Movapd_xmmm128_xmm, (d, s) => s),
            (Code.Movupd_xmm_xmmm128, (d, s) => s),
        ];
        var rng = new SseRandom(4 + tier);
        foreach (var (code, oracle) in moves)
        {
            using var m = new SseMachine(tier, a => a.AddInstruction(I(code, Register.XMM8, Register.XMM15)));
            for (int n = 0; n < 10; n++)
            {
                V d = rng.Vec(), s = rng.Vec();
                m.SetXmm(8, d); m.SetXmm(15, s);
                m.RunToHlt();
                Assert.True(oracle(d, s) == m.GetXmm(8), code.ToString());
                Assert.Equal(s, m.GetXmm(15));
            }
        }
    }

    [Theory]
    [InlineData(0, Code.Movdqa_xmm_xmmm128, true)]
    [InlineData(1, Code.Movdqa_xmm_xmmm128, true)]
    [InlineData(0, Code.Movaps_xmm_xmmm128, true)]
    [InlineData(0, Code.Movapd_xmm_xmmm128, true)]
    [InlineData(0, Code.Movdqa_xmmm128_xmm, false)]
    [InlineData(1, Code.Movaps_xmmm128_xmm, false)]
    [InlineData(0, Code.Movapd_xmmm128_xmm, false)]
    [InlineData(0, Code.Movntdq_m128_xmm, false)]
    [InlineData(1, Code.Movntps_m128_xmm, false)]
    [InlineData(0, Code.Movntpd_m128_xmm, false)]
    public void Aligned_moves_fault_GP0_on_a_misaligned_address_and_change_nothing(int tier, Code code, bool load)
    {
        // SDM MOVDQA/MOVAPS/MOVAPD/MOVNTDQ/MOVNTPS: memory operand not 16-byte aligned -> #GP(0).
        using var m = new SseMachine(tier, a => a.AddInstruction(load ? I(code, Register.XMM2, AtRax) : I(code, AtRax, Register.XMM2)));
        var v = Vector128.Create(0x0102030405060708UL, 0x1112131415161718UL);
        m.SetXmm(2, v);
        m.WriteMem128(D, Vector128<ulong>.Zero);
        m.WriteMem128(D + 16, Vector128<ulong>.Zero);
        m.Gpr(0) = D + 4;
        m.RunExpectFault(Vector.GP, SseMachine.CodeAddr);
        Assert.Equal(v, m.GetXmm(2));
        Assert.Equal(Vector128<ulong>.Zero, m.ReadMem128(D));
        Assert.Equal(Vector128<ulong>.Zero, m.ReadMem128(D + 16));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Movnti_stores_a_gpr(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            a.AddInstruction(I(Code.Movnti_m32_r32, AtRax, Register.ECX));
            a.AddInstruction(I(Code.Movnti_m64_r64, new MemoryOperand(Register.RAX, 8), Register.RDX));
        });
        m.Gpr(0) = D + 3;
        m.Gpr(1) = 0xAAAA_BBBB_CCCC_DDDDUL;
        m.Gpr(2) = 0x0123_4567_89AB_CDEFUL;
        m.Mem(D, 32).Fill(0xEE);
        m.RunToHlt();
        Assert.Equal(0xCCCC_DDDDu, BitConverter.ToUInt32(m.Mem(D + 3, 4)));
        Assert.Equal(0xEE, m.Mem(D + 7, 1)[0]);
        Assert.Equal(0x0123_4567_89AB_CDEFUL, BitConverter.ToUInt64(m.Mem(D + 11, 8)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Ldmxcsr_stmxcsr_round_trip_and_reserved_bits_fault(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            a.ldmxcsr(__dword_ptr[rax]);
            a.stmxcsr(__dword_ptr[rax + 4]);
        });
        // 0xFFC0: FZ, round toward zero, all masks, DAZ (bit 6): all defined bits (SDM Vol. 1 10.2.3).
        BitConverter.TryWriteBytes(m.Mem(D, 4), 0x0000_FFC0u);
        m.Mem(D + 4, 4).Fill(0x55);
        m.Gpr(0) = D;
        m.RunToHlt();
        Assert.Equal(0xFFC0u, m.S->Mxcsr);
        Assert.Equal(0xFFC0u, BitConverter.ToUInt32(m.Mem(D + 4, 4)));

        // Bit 16 is reserved: #GP(0), MXCSR unchanged (SDM LDMXCSR).
        BitConverter.TryWriteBytes(m.Mem(D, 4), 0x0001_1F80u);
        m.RunExpectFault(Vector.GP, SseMachine.CodeAddr);
        Assert.Equal(0xFFC0u, m.S->Mxcsr);
    }
}
