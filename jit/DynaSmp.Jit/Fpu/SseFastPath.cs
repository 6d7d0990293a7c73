using System.Reflection;
using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using static System.BitConverter;

namespace DynaSmp.Jit.Fpu;

/// <summary>
/// Both tiers' fast paths for SSE/SSE2 floating point: host IEEE arithmetic (C# double/float, which is correctly rounded
/// to nearest on every .NET host) used only where it is bit-identical to the guest instruction and raises no MXCSR
/// flag that is not already set. Each helper returns 1 when it wrote the result, 0 when the case needs tier 0's
/// software path (<see cref="Interpreter.Interp"/>, SoftFloat): a directed rounding mode, a NaN, infinity or denormal
/// operand, a result that overflows, is tiny (may underflow or be flushed by FTZ) or is inexact while MXCSR.PE is still
/// clear or PM is unmasked. Nothing here touches GPRs, so tier 1 calls it without writing its registers back.
/// </summary>
/// <remarks>Why exact: with every operand zero or normal, the only flags an operation can raise are OE, UE and PE
/// (IE/ZE need NaN, infinity, 0/0, x/0 or sqrt of a negative, all of which give a NaN or infinity we reject; DE needs a
/// denormal). Results with a biased exponent of 0, 1 or the maximum are rejected, so no OE/UE, and FTZ and DAZ
/// cannot matter. PE is sticky: when it is already set and masked, an inexact result changes nothing.
/// Helper shape: (CpuState*, destination XMM slot (2n), source low and high qwords, imm8 or operand size).
/// Entry points are AggressiveOptimization and their checks AggressiveInlining: compiled code calls them from its first
/// run, and a benchmark of a few hundred milliseconds otherwise spent its first 100+ ms in .NET's unoptimised tier 0 of
/// them, each check a call of its own (perf, nbody and mandel).</remarks>
public static unsafe class SseFastPath
{
    /// <summary>(mnemonic, helper) for helpers of shape int (CpuState*, int dstSlot, ulong lo, ulong hi, int imm).</summary>
    public static readonly (Iced.Intel.Mnemonic Mnemonic, MethodInfo Helper)[] XmmHelpers = Find(5);
    /// <summary>Conversions to a GPR: int (CpuState*, ulong lo, int size, out ulong result).</summary>
    public static readonly (Iced.Intel.Mnemonic Mnemonic, MethodInfo Helper)[] GprHelpers = Find(4);
    static readonly MethodInfo?[] XmmByMnemonic = ByMnemonic(XmmHelpers), GprByMnemonic = ByMnemonic(GprHelpers);

    /// <summary>The XMM-destination helper for <paramref name="i"/>, or null: not a helper's mnemonic, or CMPSD's string
    /// form (the SSE2 compare shares its mnemonic). Both tiers ask this.</summary>
    public static MethodInfo? XmmHelper(in Iced.Intel.Instruction i) =>
        i.Mnemonic == Iced.Intel.Mnemonic.Cmpsd && i.Code != Iced.Intel.Code.Cmpsd_xmm_xmmm64_imm8 ? null : XmmByMnemonic[(int)i.Mnemonic];

    /// <summary>The conversion-to-GPR helper for <paramref name="m"/>, or null.</summary>
    public static MethodInfo? GprHelper(Iced.Intel.Mnemonic m) => GprByMnemonic[(int)m];

    static (Iced.Intel.Mnemonic, MethodInfo)[] Find(int arity)
    {
        var list = new List<(Iced.Intel.Mnemonic, MethodInfo)>();
        foreach (var mi in typeof(SseFastPath).GetMethods(BindingFlags.Public | BindingFlags.Static))
            if (mi.GetParameters().Length == arity && Enum.TryParse<Iced.Intel.Mnemonic>(mi.Name, out var m)) list.Add((m, mi));
        return list.ToArray();
    }

    static MethodInfo?[] ByMnemonic((Iced.Intel.Mnemonic Mnemonic, MethodInfo Helper)[] helpers)
    {
        var table = new MethodInfo?[Enum.GetValues<Iced.Intel.Mnemonic>().Length];
        foreach (var (m, helper) in helpers) table[(int)m] = helper;
        return table;
    }

    /// <summary>MXCSR bits that must equal <see cref="RoundingFast"/> for a rounding operation: RC (round to nearest),
    /// PM (precision masked) and PE (already set).</summary>
    const uint RoundingCheck = 0x6000 | 0x1000 | 0x20, RoundingFast = 0x1000 | 0x20;
    /// <summary>For the truncating conversions RC does not matter: PM masked and PE set.</summary>
    const uint TruncCheck = 0x1000 | 0x20;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool RoundingOk(CpuState* s) => (s->Mxcsr & RoundingCheck) == RoundingFast;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool InexactOk(CpuState* s) => (s->Mxcsr & TruncCheck) == TruncCheck;

    /// <summary>Zero or normal: not denormal, infinity or NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Ordinary64(ulong v) { ulong e = (v >> 52) & 0x7FF; return e - 1 < 0x7FE || (v << 1) == 0; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Ordinary32(uint v) { uint e = (v >> 23) & 0xFF; return e - 1 < 0xFE || (v << 1) == 0; }
    /// <summary>Normal with a biased exponent of at least 2 (nowhere near tininess) and finite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool SafeResult64(ulong r) => ((r >> 52) & 0x7FF) - 2 < 0x7FD;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool SafeResult32(uint r) => ((r >> 23) & 0xFF) - 2 < 0xFD;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Zero64(ulong v) => (v << 1) == 0;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Zero32(uint v) => (v << 1) == 0;

    // ---- arithmetic -----------------------------------------------------------------------------------

    /// <summary>One binary (or, with <see cref="Unary"/>, one-operand) lane operation.</summary>
    public interface IOp
    {
        static abstract double F64(double a, double b);
        static abstract float F32(float a, float b);
        /// <summary>False for MIN/MAX: they select an operand, so only IE/DE (NaN, denormal operands) can arise.</summary>
        static abstract bool Rounds { get; }
        static abstract bool Unary { get; }
        /// <summary>Whether a zero result from ordinary operands is exact (no underflow).</summary>
        static abstract bool ZeroExact(bool aZero, bool bZero);
    }

    public struct AddOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a + b;
        public static bool Rounds => true;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => true; // a sum of finite non-denormal values rounds to 0 only when exact
    }
    public struct SubOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a - b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a - b;
        public static bool Rounds => true;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => true;
    }
    public struct MulOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a * b;
        public static bool Rounds => true;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => a || b;
    }
    public struct DivOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a / b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a / b;
        public static bool Rounds => true;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => a;
    }
    /// <summary>x86 MIN: the first operand if it is less, else the second (so equal zeros give the second).</summary>
    public struct MinOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a < b ? a : b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a < b ? a : b;
        public static bool Rounds => false;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => true;
    }
    public struct MaxOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => a > b ? a : b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => a > b ? a : b;
        public static bool Rounds => false;
        public static bool Unary => false;
        public static bool ZeroExact(bool a, bool b) => true;
    }
    public struct SqrtOp : IOp
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static double F64(double a, double b) => Math.Sqrt(b);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float F32(float a, float b) => MathF.Sqrt(b);
        public static bool Rounds => true;
        public static bool Unary => true;
        public static bool ZeroExact(bool a, bool b) => b;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Lane64<T>(ulong a, ulong b, out ulong r) where T : struct, IOp
    {
        r = 0;
        if (!Ordinary64(b) || (!T.Unary && !Ordinary64(a))) return false;
        r = DoubleToUInt64Bits(T.F64(UInt64BitsToDouble(a), UInt64BitsToDouble(b)));
        return !T.Rounds || SafeResult64(r) || (Zero64(r) && T.ZeroExact(Zero64(a), Zero64(b)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static bool Lane32<T>(uint a, uint b, out uint r) where T : struct, IOp
    {
        r = 0;
        if (!Ordinary32(b) || (!T.Unary && !Ordinary32(a))) return false;
        r = SingleToUInt32Bits(T.F32(UInt32BitsToSingle(a), UInt32BitsToSingle(b)));
        return !T.Rounds || SafeResult32(r) || (Zero32(r) && T.ZeroExact(Zero32(a), Zero32(b)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Sd<T>(CpuState* s, int d, ulong b) where T : struct, IOp
    {
        if (T.Rounds && !RoundingOk(s)) return 0;
        if (!Lane64<T>(s->Xmm[d], b, out ulong r)) return 0;
        s->Xmm[d] = r;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Pd<T>(CpuState* s, int d, ulong blo, ulong bhi) where T : struct, IOp
    {
        if (T.Rounds && !RoundingOk(s)) return 0;
        if (!Lane64<T>(s->Xmm[d], blo, out ulong r0) || !Lane64<T>(s->Xmm[d + 1], bhi, out ulong r1)) return 0;
        s->Xmm[d] = r0;
        s->Xmm[d + 1] = r1;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Ss<T>(CpuState* s, int d, ulong b) where T : struct, IOp
    {
        if (T.Rounds && !RoundingOk(s)) return 0;
        ulong a = s->Xmm[d];
        if (!Lane32<T>((uint)a, (uint)b, out uint r)) return 0;
        s->Xmm[d] = (a & 0xFFFF_FFFF_0000_0000) | r;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static int Ps<T>(CpuState* s, int d, ulong blo, ulong bhi) where T : struct, IOp
    {
        if (T.Rounds && !RoundingOk(s)) return 0;
        ulong alo = s->Xmm[d], ahi = s->Xmm[d + 1];
        if (!Lane32<T>((uint)alo, (uint)blo, out uint r0) || !Lane32<T>((uint)(alo >> 32), (uint)(blo >> 32), out uint r1)
            || !Lane32<T>((uint)ahi, (uint)bhi, out uint r2) || !Lane32<T>((uint)(ahi >> 32), (uint)(bhi >> 32), out uint r3)) return 0;
        s->Xmm[d] = r0 | (ulong)r1 << 32;
        s->Xmm[d + 1] = r2 | (ulong)r3 << 32;
        return 1;
    }

    // The helpers both tiers call, named as the mnemonics (XmmHelpers and GprHelpers find them by name).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Addsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<AddOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Subsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<SubOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Mulsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<MulOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Divsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<DivOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Minsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<MinOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Maxsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<MaxOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Sqrtsd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Sd<SqrtOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Addpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<AddOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Subpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<SubOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Mulpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<MulOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Divpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<DivOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Minpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<MinOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Maxpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<MaxOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Sqrtpd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Pd<SqrtOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Addss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<AddOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Subss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<SubOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Mulss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<MulOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Divss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<DivOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Minss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<MinOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Maxss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<MaxOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Sqrtss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ss<SqrtOp>(s, d, lo);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Addps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<AddOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Subps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<SubOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Mulps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<MulOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Divps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<DivOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Minps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<MinOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Maxps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<MaxOp>(s, d, lo, hi);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Sqrtps(CpuState* s, int d, ulong lo, ulong hi, int imm) => Ps<SqrtOp>(s, d, lo, hi);

    // ---- compares -------------------------------------------------------------------------------------

    /// <summary>CMPcc predicate (imm8[2:0]) on ordered operands: UNORD is false and ORD true.</summary>
    static bool Predicate(int p, bool lt, bool eq) => (p & 7) switch
    {
        0 => eq, 1 => lt, 2 => lt || eq, 3 => false, 4 => !eq, 5 => !lt, 6 => !(lt || eq), _ => true,
    };

    static bool Cmp64(ulong a, ulong b, int p, out ulong mask)
    {
        mask = 0;
        if (!Ordinary64(a) || !Ordinary64(b)) return false;
        double x = UInt64BitsToDouble(a), y = UInt64BitsToDouble(b);
        mask = Predicate(p, x < y, x == y) ? ulong.MaxValue : 0;
        return true;
    }

    static bool Cmp32(uint a, uint b, int p, out uint mask)
    {
        mask = 0;
        if (!Ordinary32(a) || !Ordinary32(b)) return false;
        float x = UInt32BitsToSingle(a), y = UInt32BitsToSingle(b);
        mask = Predicate(p, x < y, x == y) ? uint.MaxValue : 0;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cmpsd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Cmp64(s->Xmm[d], lo, imm, out ulong m)) return 0;
        s->Xmm[d] = m;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cmppd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Cmp64(s->Xmm[d], lo, imm, out ulong m0) || !Cmp64(s->Xmm[d + 1], hi, imm, out ulong m1)) return 0;
        s->Xmm[d] = m0;
        s->Xmm[d + 1] = m1;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cmpss(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong a = s->Xmm[d];
        if (!Cmp32((uint)a, (uint)lo, imm, out uint m)) return 0;
        s->Xmm[d] = (a & 0xFFFF_FFFF_0000_0000) | m;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cmpps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong a = s->Xmm[d], b = s->Xmm[d + 1];
        if (!Cmp32((uint)a, (uint)lo, imm, out uint m0) || !Cmp32((uint)(a >> 32), (uint)(lo >> 32), imm, out uint m1)
            || !Cmp32((uint)b, (uint)hi, imm, out uint m2) || !Cmp32((uint)(b >> 32), (uint)(hi >> 32), imm, out uint m3)) return 0;
        s->Xmm[d] = m0 | (ulong)m1 << 32;
        s->Xmm[d + 1] = m2 | (ulong)m3 << 32;
        return 1;
    }

    /// <summary>(U)COMIS of ordered operands: ZF, PF, CF as the SDM gives them (PF only for unordered), OF, SF, AF clear.</summary>
    static int Comi(CpuState* s, bool ordered, bool lt, bool eq)
    {
        if (!ordered) return 0;
        Flags.SetStatus(s, RFlags.Status, lt ? RFlags.CF : eq ? RFlags.ZF : 0);
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Comisd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong a = s->Xmm[d];
        double x = UInt64BitsToDouble(a), y = UInt64BitsToDouble(lo);
        return Comi(s, Ordinary64(a) && Ordinary64(lo), x < y, x == y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Ucomisd(CpuState* s, int d, ulong lo, ulong hi, int imm) => Comisd(s, d, lo, hi, imm);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Comiss(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        uint a = (uint)s->Xmm[d];
        float x = UInt32BitsToSingle(a), y = UInt32BitsToSingle((uint)lo);
        return Comi(s, Ordinary32(a) && Ordinary32((uint)lo), x < y, x == y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Ucomiss(CpuState* s, int d, ulong lo, ulong hi, int imm) => Comiss(s, d, lo, hi, imm);

    // ---- shuffles and unpacks (no MXCSR involvement: always done here) --------------------------------

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Unpcklpd(CpuState* s, int d, ulong lo, ulong hi, int imm) { s->Xmm[d + 1] = lo; return 1; }
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Unpckhpd(CpuState* s, int d, ulong lo, ulong hi, int imm) { s->Xmm[d] = s->Xmm[d + 1]; s->Xmm[d + 1] = hi; return 1; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Unpcklps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong a = s->Xmm[d];
        s->Xmm[d] = (a & 0xFFFF_FFFF) | lo << 32;
        s->Xmm[d + 1] = (a >> 32) | (lo & 0xFFFF_FFFF_0000_0000);
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Unpckhps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong a = s->Xmm[d + 1];
        s->Xmm[d] = (a & 0xFFFF_FFFF) | hi << 32;
        s->Xmm[d + 1] = (a >> 32) | (hi & 0xFFFF_FFFF_0000_0000);
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Shufpd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong r0 = (imm & 1) != 0 ? s->Xmm[d + 1] : s->Xmm[d];
        s->Xmm[d + 1] = (imm & 2) != 0 ? hi : lo;
        s->Xmm[d] = r0;
        return 1;
    }

    static uint Dword(ulong lo, ulong hi, int k) => (uint)((k < 2 ? lo : hi) >> (32 * (k & 1)));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Shufps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        ulong alo = s->Xmm[d], ahi = s->Xmm[d + 1];
        s->Xmm[d] = Dword(alo, ahi, imm & 3) | (ulong)Dword(alo, ahi, (imm >> 2) & 3) << 32;
        s->Xmm[d + 1] = Dword(lo, hi, (imm >> 4) & 3) | (ulong)Dword(lo, hi, (imm >> 6) & 3) << 32;
        return 1;
    }

    // ---- conversions ----------------------------------------------------------------------------------

    /// <summary>CVTSI2SD: the integer source (imm = its size, 4 or 8) in <paramref name="lo"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtsi2sd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        long v = imm == 8 ? (long)lo : (int)lo;
        if ((ulong)(v + (1L << 53)) > (1UL << 54) && !RoundingOk(s)) return 0; // beyond 2^53 it may round
        s->Xmm[d] = DoubleToUInt64Bits(v);
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtsi2ss(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        long v = imm == 8 ? (long)lo : (int)lo;
        if ((ulong)(v + (1L << 24)) > (1UL << 25)) return 0; // beyond 2^24 it may round: software
        s->Xmm[d] = (s->Xmm[d] & 0xFFFF_FFFF_0000_0000) | SingleToUInt32Bits(v);
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtss2sd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Ordinary32((uint)lo)) return 0;
        s->Xmm[d] = DoubleToUInt64Bits(UInt32BitsToSingle((uint)lo));
        return 1;
    }

    static bool Narrow(CpuState* s, ulong x, out uint r)
    {
        r = 0;
        if (!Ordinary64(x)) return false;
        double v = UInt64BitsToDouble(x);
        float f = (float)v;
        r = SingleToUInt32Bits(f);
        if (Zero64(x)) return true;
        if (!SafeResult32(r)) return false;
        return f == v || RoundingOk(s);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtsd2ss(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Narrow(s, lo, out uint r)) return 0;
        s->Xmm[d] = (s->Xmm[d] & 0xFFFF_FFFF_0000_0000) | r;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtpd2ps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Narrow(s, lo, out uint r0) || !Narrow(s, hi, out uint r1)) return 0;
        s->Xmm[d] = r0 | (ulong)r1 << 32;
        s->Xmm[d + 1] = 0;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtps2pd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        if (!Ordinary32((uint)lo) || !Ordinary32((uint)(lo >> 32))) return 0;
        s->Xmm[d] = DoubleToUInt64Bits(UInt32BitsToSingle((uint)lo));
        s->Xmm[d + 1] = DoubleToUInt64Bits(UInt32BitsToSingle((uint)(lo >> 32)));
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtdq2pd(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        s->Xmm[d] = DoubleToUInt64Bits((int)lo);
        s->Xmm[d + 1] = DoubleToUInt64Bits((int)(lo >> 32));
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtdq2ps(CpuState* s, int d, ulong lo, ulong hi, int imm)
    {
        for (int k = 0; k < 4; k++)
        {
            int v = (int)Dword(lo, hi, k);
            if ((uint)(v + (1 << 24)) > 1u << 25) return 0; // may round: software
        }
        s->Xmm[d] = SingleToUInt32Bits((int)lo) | (ulong)SingleToUInt32Bits((int)(lo >> 32)) << 32;
        s->Xmm[d + 1] = SingleToUInt32Bits((int)hi) | (ulong)SingleToUInt32Bits((int)(hi >> 32)) << 32;
        return 1;
    }

    /// <summary>An ordinary value converted to a signed integer of <paramref name="bits"/> bits, truncated or rounded to
    /// nearest-even; false when out of range (IE, integer indefinite) or inexact without the PE/PM condition.</summary>
    static bool ToInt(CpuState* s, double x, int bits, bool truncate, out long v)
    {
        v = 0;
        if (!truncate && (s->Mxcsr & 0x6000) != 0) return false;
        double t = truncate ? Math.Truncate(x) : Math.Round(x, MidpointRounding.ToEven);
        double limit = bits == 64 ? 9223372036854775808.0 : 2147483648.0;
        if (!(t >= -limit && t < limit)) return false;
        v = (long)t;
        return t == x || InexactOk(s);
    }

    static bool Int64(CpuState* s, ulong x, int bits, bool truncate, out long v)
    {
        v = 0;
        return Ordinary64(x) && ToInt(s, UInt64BitsToDouble(x), bits, truncate, out v);
    }

    static bool Int32(CpuState* s, uint x, int bits, bool truncate, out long v)
    {
        v = 0;
        return Ordinary32(x) && ToInt(s, UInt32BitsToSingle(x), bits, truncate, out v);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvttpd2dq(CpuState* s, int d, ulong lo, ulong hi, int imm) => PackedToDq(s, d, lo, hi, truncate: true);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtpd2dq(CpuState* s, int d, ulong lo, ulong hi, int imm) => PackedToDq(s, d, lo, hi, truncate: false);

    static int PackedToDq(CpuState* s, int d, ulong lo, ulong hi, bool truncate)
    {
        if (!Int64(s, lo, 32, truncate, out long a) || !Int64(s, hi, 32, truncate, out long b)) return 0;
        s->Xmm[d] = (uint)a | (ulong)(uint)b << 32;
        s->Xmm[d + 1] = 0;
        return 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvttps2dq(CpuState* s, int d, ulong lo, ulong hi, int imm) => SinglesToDq(s, d, lo, hi, truncate: true);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtps2dq(CpuState* s, int d, ulong lo, ulong hi, int imm) => SinglesToDq(s, d, lo, hi, truncate: false);

    static int SinglesToDq(CpuState* s, int d, ulong lo, ulong hi, bool truncate)
    {
        if (!Int32(s, (uint)lo, 32, truncate, out long a) || !Int32(s, (uint)(lo >> 32), 32, truncate, out long b)
            || !Int32(s, (uint)hi, 32, truncate, out long c) || !Int32(s, (uint)(hi >> 32), 32, truncate, out long e)) return 0;
        s->Xmm[d] = (uint)a | (ulong)(uint)b << 32;
        s->Xmm[d + 1] = (uint)c | (ulong)(uint)e << 32;
        return 1;
    }

    // GPR destinations: imm = the destination's size; the value (zero-extended for 32 bits) goes to r.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvttsd2si(CpuState* s, ulong lo, int imm, out ulong r) => ToGpr(Int64(s, lo, imm * 8, true, out long v), v, imm, out r);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtsd2si(CpuState* s, ulong lo, int imm, out ulong r) => ToGpr(Int64(s, lo, imm * 8, false, out long v), v, imm, out r);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvttss2si(CpuState* s, ulong lo, int imm, out ulong r) => ToGpr(Int32(s, (uint)lo, imm * 8, true, out long v), v, imm, out r);
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] public static int Cvtss2si(CpuState* s, ulong lo, int imm, out ulong r) => ToGpr(Int32(s, (uint)lo, imm * 8, false, out long v), v, imm, out r);

    static int ToGpr(bool ok, long v, int size, out ulong r)
    {
        r = size == 8 ? (ulong)v : (uint)v;
        return ok ? 1 : 0;
    }
}
