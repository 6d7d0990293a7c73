using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Iced.Intel;
using V = System.Runtime.Intrinsics.Vector128<ulong>;

namespace DynaSmp.Tests.SseInsns;

#pragma warning disable CA1857 // the oracle deliberately runs the host instruction with run-time immediates

/// <summary>Shuffles, immediate shifts, PINSRW/PEXTRW and the sign-mask moves against the host CPU.</summary>
public sealed class SseImmediateOracleTests
{
    const int Iterations = 40;

    // (dest, source, imm8) -> dest. Source is unused by the one-register immediate forms.
    static readonly Dictionary<Code, Func<V, V, byte, V>> Ops = new()
    {
        [Code.Pshufd_xmm_xmmm128_imm8] = (d, s, k) => Sse2.Shuffle(s.AsInt32(), k).AsUInt64(),
        [Code.Pshuflw_xmm_xmmm128_imm8] = (d, s, k) => Sse2.ShuffleLow(s.AsInt16(), k).AsUInt64(),
        [Code.Pshufhw_xmm_xmmm128_imm8] = (d, s, k) => Sse2.ShuffleHigh(s.AsInt16(), k).AsUInt64(),
        [Code.Shufps_xmm_xmmm128_imm8] = (d, s, k) => Sse.Shuffle(d.AsSingle(), s.AsSingle(), k).AsUInt64(),
        [Code.Shufpd_xmm_xmmm128_imm8] = (d, s, k) => Sse2.Shuffle(d.AsDouble(), s.AsDouble(), k).AsUInt64(),
        [Code.Psllw_xmm_imm8] = (d, s, k) => Sse2.ShiftLeftLogical(d.AsInt16(), k).AsUInt64(),
        [Code.Pslld_xmm_imm8] = (d, s, k) => Sse2.ShiftLeftLogical(d.AsInt32(), k).AsUInt64(),
        [Code.Psllq_xmm_imm8] = (d, s, k) => Sse2.ShiftLeftLogical(d, k),
        [Code.Psrlw_xmm_imm8] = (d, s, k) => Sse2.ShiftRightLogical(d.AsInt16(), k).AsUInt64(),
        [Code.Psrld_xmm_imm8] = (d, s, k) => Sse2.ShiftRightLogical(d.AsInt32(), k).AsUInt64(),
        [Code.Psrlq_xmm_imm8] = (d, s, k) => Sse2.ShiftRightLogical(d, k),
        [Code.Psraw_xmm_imm8] = (d, s, k) => Sse2.ShiftRightArithmetic(d.AsInt16(), k).AsUInt64(),
        [Code.Psrad_xmm_imm8] = (d, s, k) => Sse2.ShiftRightArithmetic(d.AsInt32(), k).AsUInt64(),
        [Code.Pslldq_xmm_imm8] = (d, s, k) => Sse2.ShiftLeftLogical128BitLane(d, k),
        [Code.Psrldq_xmm_imm8] = (d, s, k) => Sse2.ShiftRightLogical128BitLane(d, k),
    };

    static bool HasSource(Code c) => c.ToString().Contains("xmmm128", StringComparison.Ordinal);

    public static TheoryData<Code, int> Cases()
    {
        var d = new TheoryData<Code, int>();
        foreach (var code in Ops.Keys) { d.Add(code, 0); d.Add(code, 1); }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Immediate_forms_match_the_host(Code code, int tier)
    {
        var oracle = Ops[code];
        var rng = new SseRandom((int)code * 13 + tier);
        for (int n = 0; n < Iterations; n++)
        {
            // The immediate is part of the code: a fresh small program per value (shift counts biased to the widths).
            byte imm = (byte)(n < 20 && !HasSource(code) ? rng.Next(70) : rng.Next(256));
            using var m = new SseMachine(tier, a =>
            {
                if (HasSource(code))
                {
                    a.AddInstruction(Instruction.Create(code, Register.XMM3, Register.XMM9, imm));
                    a.AddInstruction(Instruction.Create(code, Register.XMM4, new MemoryOperand(Register.RAX), imm));
                }
                else
                {
                    a.AddInstruction(Instruction.Create(code, Register.XMM3, imm));
                    a.AddInstruction(Instruction.Create(code, Register.XMM12, imm));
                }
            });
            V x = rng.Vec(), y = rng.Vec(), z = rng.Vec();
            m.SetXmm(3, x); m.SetXmm(9, y); m.SetXmm(4, z); m.SetXmm(12, z);
            m.Gpr(0) = SseMachine.DataAddr;
            m.WriteMem128(SseMachine.DataAddr, y);
            m.RunToHlt();
            Assert.Equal(oracle(x, y, imm), m.GetXmm(3));
            if (HasSource(code)) Assert.Equal(oracle(z, y, imm), m.GetXmm(4));
            else Assert.Equal(oracle(z, y, imm), m.GetXmm(12));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Pinsrw_and_pextrw_match_the_host(int tier)
    {
        var rng = new SseRandom(77 + tier);
        for (int n = 0; n < 16; n++)
        {
            // Only imm8[2:0] selects the word (SDM PINSRW/PEXTRW); the upper bits are random.
            byte imm = (byte)rng.Next(256);
            byte sel = (byte)(imm & 7);
            using var m = new SseMachine(tier, a =>
            {
                a.AddInstruction(Instruction.Create(Code.Pinsrw_xmm_r32m16_imm8, Register.XMM3, Register.ECX, imm));
                a.AddInstruction(Instruction.Create(Code.Pinsrw_xmm_r32m16_imm8, Register.XMM4, new MemoryOperand(Register.RAX, 1), imm));
                a.AddInstruction(Instruction.Create(Code.Pextrw_r32_xmm_imm8, Register.EDX, Register.XMM5, imm));
                a.AddInstruction(Instruction.Create(Code.Pextrw_r64_xmm_imm8, Register.R9, Register.XMM5, imm));
            });
            V x = rng.Vec(), z = rng.Vec(), w = rng.Vec();
            ulong rcx = rng.U64();
            m.SetXmm(3, x); m.SetXmm(4, z); m.SetXmm(5, w);
            m.Gpr(1) = rcx; m.Gpr(2) = ulong.MaxValue; m.Gpr(9) = ulong.MaxValue;
            m.Gpr(0) = SseMachine.DataAddr;
            m.Mem(SseMachine.DataAddr + 1, 2)[0] = 0x34;
            m.Mem(SseMachine.DataAddr + 1, 2)[1] = 0xB2; // misaligned m16: no alignment requirement
            m.RunToHlt();
            Assert.Equal(Sse2.Insert(x.AsUInt16(), (ushort)rcx, sel).AsUInt64(), m.GetXmm(3));
            Assert.Equal(Sse2.Insert(z.AsUInt16(), (ushort)0xB234, sel).AsUInt64(), m.GetXmm(4));
            Assert.Equal((ulong)Sse2.Extract(w.AsUInt16(), sel), m.Gpr(2));
            Assert.Equal((ulong)Sse2.Extract(w.AsUInt16(), sel), m.Gpr(9));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Sign_mask_moves_match_the_host(int tier)
    {
        using var m = new SseMachine(tier, a =>
        {
            a.AddInstruction(Instruction.Create(Code.Pmovmskb_r32_xmm, Register.EAX, Register.XMM1));
            a.AddInstruction(Instruction.Create(Code.Pmovmskb_r64_xmm, Register.R10, Register.XMM1));
            a.AddInstruction(Instruction.Create(Code.Movmskps_r32_xmm, Register.ECX, Register.XMM14));
            a.AddInstruction(Instruction.Create(Code.Movmskpd_r32_xmm, Register.EDX, Register.XMM2));
            a.AddInstruction(Instruction.Create(Code.Movmskps_r64_xmm, Register.R11, Register.XMM14));
        });
        var rng = new SseRandom(5 + tier);
        for (int n = 0; n < Iterations; n++)
        {
            V x = rng.Vec(), y = rng.Vec(), z = rng.Vec();
            m.SetXmm(1, x); m.SetXmm(14, y); m.SetXmm(2, z);
            for (int r = 0; r < 16; r++) if (r != 4) m.Gpr(r) = ulong.MaxValue; // results must zero-extend
            m.RunToHlt();
            Assert.Equal((ulong)Sse2.MoveMask(x.AsByte()), m.Gpr(0));
            Assert.Equal((ulong)Sse2.MoveMask(x.AsByte()), m.Gpr(10));
            Assert.Equal((ulong)Sse.MoveMask(y.AsSingle()), m.Gpr(1));
            Assert.Equal((ulong)Sse2.MoveMask(z.AsDouble()), m.Gpr(2));
            Assert.Equal((ulong)Sse.MoveMask(y.AsSingle()), m.Gpr(11));
        }
    }
}
