using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using DynaSmp.Jit.Cpu;
using Iced.Intel;
using V = System.Runtime.Intrinsics.Vector128<ulong>;

namespace DynaSmp.Tests.SseInsns;

/// <summary>Every two-operand xmm, xmm/m128 instruction against the host CPU running the same instruction
/// through System.Runtime.Intrinsics.X86 (the oracle), with random inputs, in both tiers.</summary>
public sealed class SseBinaryOracleTests
{
    const int Iterations = 40;

    static readonly Dictionary<Code, Func<V, V, V>> Ops = new()
    {
        [Code.Pxor_xmm_xmmm128] = (a, b) => Sse2.Xor(a, b),
        [Code.Por_xmm_xmmm128] = (a, b) => Sse2.Or(a, b),
        [Code.Pand_xmm_xmmm128] = (a, b) => Sse2.And(a, b),
        [Code.Pandn_xmm_xmmm128] = (a, b) => Sse2.AndNot(a, b),
        [Code.Xorps_xmm_xmmm128] = (a, b) => Sse.Xor(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Xorpd_xmm_xmmm128] = (a, b) => Sse2.Xor(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Andps_xmm_xmmm128] = (a, b) => Sse.And(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Andpd_xmm_xmmm128] = (a, b) => Sse2.And(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Andnps_xmm_xmmm128] = (a, b) => Sse.AndNot(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Andnpd_xmm_xmmm128] = (a, b) => Sse2.AndNot(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Orps_xmm_xmmm128] = (a, b) => Sse.Or(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Orpd_xmm_xmmm128] = (a, b) => Sse2.Or(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Pcmpeqb_xmm_xmmm128] = (a, b) => Sse2.CompareEqual(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Pcmpeqw_xmm_xmmm128] = (a, b) => Sse2.CompareEqual(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pcmpeqd_xmm_xmmm128] = (a, b) => Sse2.CompareEqual(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Pcmpgtb_xmm_xmmm128] = (a, b) => Sse2.CompareGreaterThan(a.AsSByte(), b.AsSByte()).AsUInt64(),
        [Code.Pcmpgtw_xmm_xmmm128] = (a, b) => Sse2.CompareGreaterThan(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pcmpgtd_xmm_xmmm128] = (a, b) => Sse2.CompareGreaterThan(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Paddb_xmm_xmmm128] = (a, b) => Sse2.Add(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Paddw_xmm_xmmm128] = (a, b) => Sse2.Add(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Paddd_xmm_xmmm128] = (a, b) => Sse2.Add(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Paddq_xmm_xmmm128] = (a, b) => Sse2.Add(a, b),
        [Code.Psubb_xmm_xmmm128] = (a, b) => Sse2.Subtract(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Psubw_xmm_xmmm128] = (a, b) => Sse2.Subtract(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Psubd_xmm_xmmm128] = (a, b) => Sse2.Subtract(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Psubq_xmm_xmmm128] = (a, b) => Sse2.Subtract(a, b),
        [Code.Paddsb_xmm_xmmm128] = (a, b) => Sse2.AddSaturate(a.AsSByte(), b.AsSByte()).AsUInt64(),
        [Code.Paddsw_xmm_xmmm128] = (a, b) => Sse2.AddSaturate(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Paddusb_xmm_xmmm128] = (a, b) => Sse2.AddSaturate(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Paddusw_xmm_xmmm128] = (a, b) => Sse2.AddSaturate(a.AsUInt16(), b.AsUInt16()).AsUInt64(),
        [Code.Psubsb_xmm_xmmm128] = (a, b) => Sse2.SubtractSaturate(a.AsSByte(), b.AsSByte()).AsUInt64(),
        [Code.Psubsw_xmm_xmmm128] = (a, b) => Sse2.SubtractSaturate(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Psubusb_xmm_xmmm128] = (a, b) => Sse2.SubtractSaturate(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Psubusw_xmm_xmmm128] = (a, b) => Sse2.SubtractSaturate(a.AsUInt16(), b.AsUInt16()).AsUInt64(),
        [Code.Pminub_xmm_xmmm128] = (a, b) => Sse2.Min(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Pmaxub_xmm_xmmm128] = (a, b) => Sse2.Max(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Pminsw_xmm_xmmm128] = (a, b) => Sse2.Min(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pmaxsw_xmm_xmmm128] = (a, b) => Sse2.Max(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pavgb_xmm_xmmm128] = (a, b) => Sse2.Average(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Pavgw_xmm_xmmm128] = (a, b) => Sse2.Average(a.AsUInt16(), b.AsUInt16()).AsUInt64(),
        [Code.Pmullw_xmm_xmmm128] = (a, b) => Sse2.MultiplyLow(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pmulhw_xmm_xmmm128] = (a, b) => Sse2.MultiplyHigh(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pmulhuw_xmm_xmmm128] = (a, b) => Sse2.MultiplyHigh(a.AsUInt16(), b.AsUInt16()).AsUInt64(),
        [Code.Pmuludq_xmm_xmmm128] = (a, b) => Sse2.Multiply(a.AsUInt32(), b.AsUInt32()),
        [Code.Pmaddwd_xmm_xmmm128] = (a, b) => Sse2.MultiplyAddAdjacent(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Psadbw_xmm_xmmm128] = (a, b) => Sse2.SumAbsoluteDifferences(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Punpcklbw_xmm_xmmm128] = (a, b) => Sse2.UnpackLow(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Punpcklwd_xmm_xmmm128] = (a, b) => Sse2.UnpackLow(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Punpckldq_xmm_xmmm128] = (a, b) => Sse2.UnpackLow(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Punpcklqdq_xmm_xmmm128] = (a, b) => Sse2.UnpackLow(a, b),
        [Code.Punpckhbw_xmm_xmmm128] = (a, b) => Sse2.UnpackHigh(a.AsByte(), b.AsByte()).AsUInt64(),
        [Code.Punpckhwd_xmm_xmmm128] = (a, b) => Sse2.UnpackHigh(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Punpckhdq_xmm_xmmm128] = (a, b) => Sse2.UnpackHigh(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Punpckhqdq_xmm_xmmm128] = (a, b) => Sse2.UnpackHigh(a, b),
        [Code.Unpcklps_xmm_xmmm128] = (a, b) => Sse.UnpackLow(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Unpckhps_xmm_xmmm128] = (a, b) => Sse.UnpackHigh(a.AsSingle(), b.AsSingle()).AsUInt64(),
        [Code.Unpcklpd_xmm_xmmm128] = (a, b) => Sse2.UnpackLow(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Unpckhpd_xmm_xmmm128] = (a, b) => Sse2.UnpackHigh(a.AsDouble(), b.AsDouble()).AsUInt64(),
        [Code.Packsswb_xmm_xmmm128] = (a, b) => Sse2.PackSignedSaturate(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Packssdw_xmm_xmmm128] = (a, b) => Sse2.PackSignedSaturate(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Packuswb_xmm_xmmm128] = (a, b) => Sse2.PackUnsignedSaturate(a.AsInt16(), b.AsInt16()).AsUInt64(),
        // Shifts by the low qword of xmm/m128.
        [Code.Psllw_xmm_xmmm128] = (a, b) => Sse2.ShiftLeftLogical(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Pslld_xmm_xmmm128] = (a, b) => Sse2.ShiftLeftLogical(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Psllq_xmm_xmmm128] = (a, b) => Sse2.ShiftLeftLogical(a, b),
        [Code.Psrlw_xmm_xmmm128] = (a, b) => Sse2.ShiftRightLogical(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Psrld_xmm_xmmm128] = (a, b) => Sse2.ShiftRightLogical(a.AsInt32(), b.AsInt32()).AsUInt64(),
        [Code.Psrlq_xmm_xmmm128] = (a, b) => Sse2.ShiftRightLogical(a, b),
        [Code.Psraw_xmm_xmmm128] = (a, b) => Sse2.ShiftRightArithmetic(a.AsInt16(), b.AsInt16()).AsUInt64(),
        [Code.Psrad_xmm_xmmm128] = (a, b) => Sse2.ShiftRightArithmetic(a.AsInt32(), b.AsInt32()).AsUInt64(),
    };

    static bool IsShift(Code c) => c.ToString() is ['P', 's', 'l' or 'r', 'l' or 'a', ..];

    public static TheoryData<Code, int> Cases()
    {
        var d = new TheoryData<Code, int>();
        foreach (var code in Ops.Keys) { d.Add(code, 0); d.Add(code, 1); }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Register_and_memory_forms_match_the_host(Code code, int tier)
    {
        Assert.True(Sse2.IsSupported);
        var oracle = Ops[code];
        // op xmm3, xmm9 ; op xmm3, [rax] ; xmm9 and [rax] hold the same source, so the result is oracle(oracle(a, b), b).
        using var m = new SseMachine(tier, a =>
        {
            a.AddInstruction(Instruction.Create(code, Register.XMM3, Register.XMM9));
            a.AddInstruction(Instruction.Create(code, Register.XMM4, new MemoryOperand(Register.RAX)));
        });
        var rng = new SseRandom((int)code * 7 + tier);
        for (int n = 0; n < Iterations; n++)
        {
            V x = rng.Vec(), y = IsShift(code) ? Vector128.Create(rng.Count(), rng.U64()) : rng.VecNear(x);
            V z = rng.Vec();
            m.SetXmm(3, x);
            m.SetXmm(9, y);
            m.SetXmm(4, z);
            m.Gpr(0) = SseMachine.DataAddr;
            m.WriteMem128(SseMachine.DataAddr, y);
            m.RunToHlt();
            Assert.Equal(oracle(x, y), m.GetXmm(3));
            Assert.Equal(y, m.GetXmm(9));
            Assert.Equal(oracle(z, y), m.GetXmm(4));
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Misaligned_m128_operand_is_GP0_and_changes_nothing(Code code, int tier)
    {
        // SDM Vol. 2 2.4 / Table 2-18 (class 4): legacy SSE m128 operands not 16-byte aligned -> #GP(0).
        using var m = new SseMachine(tier, a => a.AddInstruction(Instruction.Create(code, Register.XMM4, new MemoryOperand(Register.RAX))));
        var z = Vector128.Create(0x1122334455667788UL, 0x99AABBCCDDEEFF00UL);
        m.SetXmm(4, z);
        m.Gpr(0) = SseMachine.DataAddr + 8;
        m.RunExpectFault(Vector.GP, SseMachine.CodeAddr);
        Assert.Equal(z, m.GetXmm(4));
    }
}
