using System.Numerics;
using System.Runtime.CompilerServices;

namespace DynaSmp.Jit.Cpu;

/// <summary>Lazy RFLAGS: record an operation, compute the status flags only when something reads them.</summary>
public static unsafe class Flags
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SizeMask(int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignBit(int size) => 1UL << (size * 8 - 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetLazy(CpuState* s, FlagOp op, int size, ulong res, ulong src1, ulong src2)
    {
        s->FlagOp = op;
        s->FlagSize = size;
        s->FlagRes = res;
        s->FlagSrc1 = src1;
        s->FlagSrc2 = src2;
    }

    /// <summary>INC/DEC keep CF: the carry-in travels in FlagSrc2 (0 or 1), so no earlier state is needed later.</summary>
    public static void SetLazyIncDec(CpuState* s, FlagOp op, int size, ulong res, ulong src1) =>
        SetLazy(s, op, size, res, src1, Carry(s));

    /// <summary>The current CF as 0 or 1, without building RFLAGS: INC/DEC (and tier 1 before them) ask for it after every
    /// flag setter, and building all of RFLAGS for it (parity included) was 15% of a 32-bit quicksort's time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Carry(CpuState* s) =>
        s->FlagOp == FlagOp.None ? s->Rflags & RFlags.CF : CarryOf(s->FlagOp, s->FlagSize, s->FlagRes, s->FlagSrc1, s->FlagSrc2);

    /// <summary>CF of a recorded operation (for INC/DEC, b is the carry kept from before).</summary>
    public static ulong CarryOf(FlagOp op, int size, ulong res, ulong a, ulong b)
    {
        ulong mask = SizeMask(size);
        res &= mask; a &= mask; b &= mask;
        return op switch
        {
            FlagOp.Add => res < a ? RFlags.CF : 0,
            FlagOp.Adc1 => res <= a ? RFlags.CF : 0,
            FlagOp.Sub => a < b ? RFlags.CF : 0,
            FlagOp.Sbb1 => a <= b ? RFlags.CF : 0,
            FlagOp.Shift => a & RFlags.CF,
            FlagOp.Inc or FlagOp.Dec => b & RFlags.CF,
            _ => 0, // Logic: CF = 0
        };
    }

    public static ulong Parity(ulong res) => (BitOperations.PopCount(res & 0xFF) & 1) == 0 ? RFlags.PF : 0;

    /// <summary>Status flags of the recorded operation (for INC/DEC, b is the carry kept from before).</summary>
    public static ulong Compute(FlagOp op, int size, ulong res, ulong a, ulong b, ulong rflags)
    {
        ulong mask = SizeMask(size), sign = SignBit(size);
        res &= mask; a &= mask; b &= mask;
        ulong f = Parity(res) | CarryOf(op, size, res, a, b);
        if (res == 0) f |= RFlags.ZF;
        if ((res & sign) != 0) f |= RFlags.SF;
        switch (op)
        {
            case FlagOp.Add: case FlagOp.Adc1:
                if (((a ^ res) & (b ^ res) & sign) != 0) f |= RFlags.OF;
                f |= (a ^ b ^ res) & RFlags.AF;
                break;
            case FlagOp.Sub: case FlagOp.Sbb1:
                if (((a ^ b) & (a ^ res) & sign) != 0) f |= RFlags.OF;
                f |= (a ^ b ^ res) & RFlags.AF;
                break;
            case FlagOp.Logic:
                break;
            case FlagOp.Shift:
                if ((b & 1) != 0) f |= RFlags.OF;
                break;
            case FlagOp.Inc:
                if (res == sign) f |= RFlags.OF;
                if ((res & 0xF) == 0) f |= RFlags.AF;
                break;
            case FlagOp.Dec:
                if (res == sign - 1) f |= RFlags.OF;
                if ((res & 0xF) == 0xF) f |= RFlags.AF;
                break;
        }
        return f;
    }

    /// <summary>The whole RFLAGS value, materialising lazy status flags.</summary>
    public static ulong Get(CpuState* s)
    {
        if (s->FlagOp == FlagOp.None) return s->Rflags | RFlags.Reserved1;
        ulong st = Compute(s->FlagOp, s->FlagSize, s->FlagRes, s->FlagSrc1, s->FlagSrc2, s->Rflags);
        return (s->Rflags & ~RFlags.Status) | st | RFlags.Reserved1;
    }

    /// <summary>Materialise into Rflags and drop the lazy record.</summary>
    public static void Materialize(CpuState* s)
    {
        if (s->FlagOp == FlagOp.None) return;
        s->Rflags = Get(s);
        s->FlagOp = FlagOp.None;
    }

    public static void Set(CpuState* s, ulong value)
    {
        s->Rflags = value | RFlags.Reserved1;
        s->FlagOp = FlagOp.None;
    }

    /// <summary>Replace only the status flags named by <paramref name="mask"/>.</summary>
    public static void SetStatus(CpuState* s, ulong mask, ulong value)
    {
        Materialize(s);
        s->Rflags = (s->Rflags & ~mask) | (value & mask);
    }

    /// <summary>Evaluate condition code <paramref name="cc"/> (the low nibble of Jcc/SETcc/CMOVcc).</summary>
    public static bool Condition(CpuState* s, int cc)
    {
        if (s->FlagOp == FlagOp.Sub)
        {
            // PERF: CMP + Jcc is the common pair; answer from the operands without building RFLAGS.
            int size = s->FlagSize;
            ulong m = SizeMask(size);
            ulong a = s->FlagSrc1 & m, b = s->FlagSrc2 & m;
            int sh = 64 - size * 8;
            long sa = (long)(a << sh) >> sh, sb = (long)(b << sh) >> sh;
            switch (cc)
            {
                case 2: return a < b;
                case 3: return a >= b;
                case 4: return a == b;
                case 5: return a != b;
                case 6: return a <= b;
                case 7: return a > b;
                case 0xC: return sa < sb;
                case 0xD: return sa >= sb;
                case 0xE: return sa <= sb;
                case 0xF: return sa > sb;
            }
        }
        else if (s->FlagOp != FlagOp.None && (cc >> 1) is 1 or 2 or 4)
        {
            // CF, ZF or SF straight from the record (every operation's ZF and SF come from its result): the Jcc, SETcc
            // and CMOVcc after TEST, AND, ADD, INC and DEC, without building RFLAGS.
            ulong res = s->FlagRes;
            bool r = (cc >> 1) switch
            {
                1 => CarryOf(s->FlagOp, s->FlagSize, res, s->FlagSrc1, s->FlagSrc2) != 0,
                2 => (res & SizeMask(s->FlagSize)) == 0,
                _ => (res & SignBit(s->FlagSize)) != 0,
            };
            return (cc & 1) != 0 ? !r : r;
        }
        return ConditionFromFlags(Get(s), cc);
    }

    public static bool ConditionFromFlags(ulong f, int cc)
    {
        bool r = (cc >> 1) switch
        {
            0 => (f & RFlags.OF) != 0,
            1 => (f & RFlags.CF) != 0,
            2 => (f & RFlags.ZF) != 0,
            3 => (f & (RFlags.CF | RFlags.ZF)) != 0,
            4 => (f & RFlags.SF) != 0,
            5 => (f & RFlags.PF) != 0,
            6 => ((f & RFlags.SF) != 0) != ((f & RFlags.OF) != 0),
            _ => (f & RFlags.ZF) != 0 || (((f & RFlags.SF) != 0) != ((f & RFlags.OF) != 0)),
        };
        return (cc & 1) != 0 ? !r : r;
    }
}
