using System.Buffers.Binary;
using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of the integer instructions compilers emit beyond plain ALU/MOV: ADC/SBB, shifts by CL and
/// rotates, one-operand MUL/IMUL, DIV/IDIV (precise #DE), CBW..CQO, XCHG of registers, BSWAP, LEAVE. Results are
/// computed inline; where flags are read afterwards, tier 0's own flag computation is called, so both tiers agree.
/// </summary>
static partial class InstEmit
{
    // ADC/SBB: the carry-in picks the flag operation (Add/Adc1, Sub/Sbb1) at run time.
    static void AdcSbb(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        ReadOperand(e, i, 1, size, e.T2);
        e.EmitCarry(); il.Store(e.T3);
        bool adc = i.Mnemonic == Mnemonic.Adc;
        il.Load(e.T1); il.Load(e.T2); il.Emit(adc ? OpCodes.Add : OpCodes.Sub);
        il.Load(e.T3); il.Emit(adc ? OpCodes.Add : OpCodes.Sub);
        il.Truncate(size); il.Store(e.Val);
        WriteOperand(e, i, 0, size, e.Val);
        e.SetFlagsWithCarryIn(adc ? FlagOp.Add : FlagOp.Sub, e.T3, size, e.Val, e.T1, e.T2);
    }

    /// <summary>SHL/SAL/SHR/SAR by a non-zero immediate keep their lazy inline flags; every other shift or rotate
    /// count (CL, or an immediate masking to 0) goes through <see cref="ShiftOrRotate"/>.</summary>
    static void ShiftAny(BlockEmitter e, in Instruction i)
    {
        if (i.Op1Kind == OpKind.Immediate8 && MaskedImmediateCount(i) != 0) Shift(e, i);
        else ShiftOrRotate(e, i);
    }

    static void ShiftOrRotate(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        LoadMaskedCount(e, i, size);
        il.Store(e.T2);
        EmitShiftRotateValue(e, i.Mnemonic, size, e.T1, e.T2);
        il.Store(e.Val);
        WriteOperand(e, i, 0, size, e.Val);
        // After the store, so a faulting store leaves the flags as they were.
        e.SetFlagsShiftRotate(i.Mnemonic, size, e.T1, e.T2);
    }

    /// <summary>Pushes the count operand (the last one: CL or an immediate) after the architectural mask.</summary>
    static void LoadMaskedCount(BlockEmitter e, in Instruction i, int size)
    {
        if (i.GetOpKind(i.OpCount - 1) == OpKind.Register) { e.LoadReg(Register.CL); e.Il.Const(size == 8 ? 63UL : 31UL); e.Il.Emit(OpCodes.And); }
        else e.Il.Const((ulong)MaskedImmediateCount(i));
    }

    /// <summary>Pushes the result of SHL/SAL/SHR/SAR/ROL/ROR of <paramref name="a"/> (zero-extended operand) by the
    /// masked count in <paramref name="count"/>; a count of 0 gives <paramref name="a"/>.</summary>
    static void EmitShiftRotateValue(BlockEmitter e, Mnemonic m, int size, Local64 a, Local64 count)
    {
        var il = e.Il;
        int bits = size * 8;
        switch (m)
        {
            case Mnemonic.Shr:
                il.Load(a); il.Load(count); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shr_Un);
                break;
            case Mnemonic.Sar:
                il.Load(a); il.SignExtend(size); il.Load(count); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shr); il.Truncate(size);
                break;
            case Mnemonic.Shl: case Mnemonic.Sal:
                il.Load(a); il.Load(count); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Shl); il.Truncate(size);
                break;
            default:
                bool left = m == Mnemonic.Rol;
                if (size >= 4)
                {
                    il.Load(a); if (size == 4) il.Emit(OpCodes.Conv_U4);
                    il.Load(count); il.Emit(OpCodes.Conv_I4);
                    il.Call(Rotations[(left ? 0 : 2) + (size == 8 ? 1 : 0)]);
                    if (size == 4) il.Emit(OpCodes.Conv_U8);
                }
                else
                {
                    // 8/16-bit: rotate by count mod width; a rotate by 0 keeps the value (x >> width is 0 here).
                    il.Load(count); il.Const((ulong)bits); il.Emit(OpCodes.Rem_Un); il.Store(e.T4);
                    il.Load(a); il.Load(e.T4); il.Emit(OpCodes.Conv_I4); il.Emit(left ? OpCodes.Shl : OpCodes.Shr_Un);
                    il.Load(a); il.Const((ulong)bits); il.Load(e.T4); il.Emit(OpCodes.Sub); il.Emit(OpCodes.Conv_I4); il.Emit(left ? OpCodes.Shr_Un : OpCodes.Shl);
                    il.Emit(OpCodes.Or); il.Truncate(size);
                }
                break;
        }
    }

    // SHLD/SHRD r/m, r, imm8/CL: the value inline for 32/64-bit operands (tier 0's computation for 16-bit ones,
    // whose counts past 16 shift a 48-bit value); flags deferred to tier 0's helper.
    static void ShiftDouble(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        bool left = i.Mnemonic == Mnemonic.Shld;
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        e.LoadReg(i.Op1Register); il.Store(e.T3);
        LoadMaskedCount(e, i, size);
        il.Store(e.T2);
        EmitShiftDoubleValue(e, left, size, e.T1, e.T3, e.T2);
        il.Store(e.Val);
        WriteOperand(e, i, 0, size, e.Val);
        bool byCl = i.GetOpKind(i.OpCount - 1) == OpKind.Register;
        e.SetFlagsShiftDouble(left, byCl || MaskedImmediateCount(i) == 0, size, e.T1, e.T3, e.T2);
    }

    /// <summary>Pushes SHLD/SHRD of <paramref name="a"/> with bits from <paramref name="b"/> (both zero-extended) by the
    /// masked <paramref name="count"/>; a count of 0 gives <paramref name="a"/>.</summary>
    static void EmitShiftDoubleValue(BlockEmitter e, bool left, int size, Local64 a, Local64 b, Local64 count)
    {
        var il = e.Il;
        switch (size)
        {
            case 4:
                // One 64-bit shift of the concatenation: SHLD takes the high half of (a:b) << count, SHRD the low half of (b:a) >> count.
                il.Load(left ? a : b); il.ConstI4(32); il.Emit(OpCodes.Shl); il.Load(left ? b : a); il.Emit(OpCodes.Or);
                il.Load(count); il.Emit(OpCodes.Conv_I4);
                if (left) { il.Emit(OpCodes.Shl); il.ConstI4(32); il.Emit(OpCodes.Shr_Un); }
                else { il.Emit(OpCodes.Shr_Un); il.Truncate(4); }
                break;
            case 8:
                // (b >> 1) >> (63 - count) is b >> (64 - count) for counts 1..63 and 0 for a count of 0.
                il.Load(a); il.Load(count); il.Emit(OpCodes.Conv_I4); il.Emit(left ? OpCodes.Shl : OpCodes.Shr_Un);
                il.Load(b); il.ConstI4(1); il.Emit(left ? OpCodes.Shr_Un : OpCodes.Shl);
                il.ConstI4(63); il.Load(count); il.Emit(OpCodes.Conv_I4); il.Emit(OpCodes.Sub); il.Emit(left ? OpCodes.Shr_Un : OpCodes.Shl);
                il.Emit(OpCodes.Or);
                break;
            default:
                il.ConstI4(left ? 1 : 0); il.ConstI4(size); il.Load(a); il.Load(b); il.Load(count); il.Emit(OpCodes.Conv_I4);
                il.Call(MShiftDoubleResult);
                break;
        }
    }

    static readonly MethodInfo MShiftDoubleResult = typeof(Interp).GetMethod(nameof(Interp.ShiftDoubleResult))!;

    static readonly MethodInfo[] Rotations =
    [
        typeof(BitOperations).GetMethod(nameof(BitOperations.RotateLeft), [typeof(uint), typeof(int)])!,
        typeof(BitOperations).GetMethod(nameof(BitOperations.RotateLeft), [typeof(ulong), typeof(int)])!,
        typeof(BitOperations).GetMethod(nameof(BitOperations.RotateRight), [typeof(uint), typeof(int)])!,
        typeof(BitOperations).GetMethod(nameof(BitOperations.RotateRight), [typeof(ulong), typeof(int)])!,
    ];

    /// <summary>IMUL with one operand widens like MUL; two- and three-operand forms truncate.</summary>
    static void ImulAny(BlockEmitter e, in Instruction i)
    {
        if (i.OpCount == 1) MulWide(e, i);
        else Imul(e, i);
    }

    // MUL/IMUL r/m: AX = AL * src, DX:AX, EDX:EAX or RDX:RAX = accumulator * src. CF = OF = the high half is
    // significant; SF/ZF/PF follow the low half and AF is 0, as tier 0 records them (FlagOp.Shift).
    static void MulWide(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        bool signed = i.Mnemonic == Mnemonic.Imul;
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        e.LoadReg(CaseRegister(0, size)); il.Store(e.T2);
        var lo = e.Val; var hi = e.T3; var of = e.T4;
        if (size == 8)
        {
            // The low half is the same for both; only the high half needs the 128-bit product.
            il.Load(e.T2); il.Load(e.T1); il.Emit(OpCodes.Mul); il.Store(lo);
            il.Load(e.T2); il.Load(e.T1); il.Call(signed ? MImul128 : MMul128); il.Store(hi);
            if (signed) { il.Load(lo); il.ConstI4(63); il.Emit(OpCodes.Shr); il.Load(hi); il.Emit(OpCodes.Ceq); il.ConstI4(0); il.Emit(OpCodes.Ceq); }
            else { il.Load(hi); il.Const(0); il.Emit(OpCodes.Cgt_Un); }
            il.Emit(OpCodes.Conv_U8); il.Store(of);
        }
        else
        {
            // The full product fits in 64 bits: compute it once, then split.
            il.Load(e.T2); if (signed) il.SignExtend(size);
            il.Load(e.T1); if (signed) il.SignExtend(size);
            il.Emit(OpCodes.Mul); il.Store(hi); // full product for now
            il.Load(hi); il.Truncate(size); il.Store(lo);
            if (signed) { il.Load(lo); il.SignExtend(size); il.Load(hi); il.Emit(OpCodes.Ceq); il.ConstI4(0); il.Emit(OpCodes.Ceq); }
            else { il.Load(hi); il.ConstI4(size * 8); il.Emit(OpCodes.Shr_Un); il.Const(0); il.Emit(OpCodes.Cgt_Un); }
            il.Emit(OpCodes.Conv_U8); il.Store(of);
            il.Load(hi); il.ConstI4(size * 8); il.Emit(OpCodes.Shr_Un); il.Truncate(size); il.Store(hi);
        }
        if (size == 1)
        {
            il.Load(hi); il.ConstI4(8); il.Emit(OpCodes.Shl); il.Load(lo); il.Emit(OpCodes.Or); il.Store(e.T2);
            e.StoreReg(Register.AX, e.T2);
        }
        else
        {
            e.StoreReg(CaseRegister(0, size), lo);
            e.StoreReg(CaseRegister(2, size), hi);
        }
        e.SetFlags(FlagOp.Shift, size, lo, of, of);
    }

    // DIV/IDIV r/m: the quotient and remainder of the double-width accumulator; #DE (before any register
    // changes) for a zero divisor or a quotient that does not fit. Flags are undefined and left as they were.
    // Up to 32-bit operands the dividend fits in 64 bits and the division is inline; 64-bit ones call a helper.
    static void Divide(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int size = OperandSize(i, 0);
        bool signed = i.Mnemonic == Mnemonic.Idiv;
        if (HasMemory(i)) e.ComputeLinear();
        ReadOperand(e, i, 0, size, e.T1);
        if (size == 1) { e.LoadReg(Register.AX); il.Store(e.T2); il.Const(0); il.Store(e.T3); }
        else { e.LoadReg(CaseRegister(0, size)); il.Store(e.T2); e.LoadReg(CaseRegister(2, size)); il.Store(e.T3); }
        if (size is 4 or 8 && !signed && (size == 4 ? DivRem32 : DivRem64) is { } divRem) EmitUnsignedDivRem(e, size, divRem);
        else if (size == 8)
        {
            e.FlushPending(); // a #DE exits with the flags of before; nothing else here touches them
            il.Gen.Emit(OpCodes.Ldarg_1); il.ConstI4(size); il.ConstI4(signed ? 1 : 0);
            // The out-parameter local: an address-taken local stays in memory for the whole method.
            var rem = e.OutA;
            il.Load(e.T3); il.Load(e.T2); il.Load(e.T1); il.Gen.Emit(OpCodes.Ldloca, rem.Slot);
            il.Call(MDivide); il.Store(e.Val);
            e.BranchIfFaulted();
            il.Load(rem); il.Store(e.T4);
        }
        else EmitDivideInline(e, size, signed);
        if (size == 1)
        {
            il.Load(e.T4); il.ConstI4(8); il.Emit(OpCodes.Shl); il.Load(e.Val); il.Emit(OpCodes.Or); il.Store(e.T2);
            e.StoreReg(Register.AX, e.T2);
        }
        else
        {
            e.StoreReg(CaseRegister(0, size), e.Val);
            e.StoreReg(CaseRegister(2, size), e.T4);
        }
    }

    /// <summary>DIV/IDIV of 8/16/32-bit operands (divisor in T1, low half or AX in T2, high half in T3): quotient to
    /// Val, remainder to T4, both truncated to the operand size; #DE as the SDM says, without a host exception.</summary>
    static void EmitDivideInline(BlockEmitter e, int size, bool signed)
    {
        var il = e.Il;
        int bits = size * 8;
        var de = e.RaiseException(Cpu.Vector.DE);
        // The dividend as one 64-bit value (AX for byte operands), sign-extended for IDIV; the divisor likewise.
        if (size == 1) il.Load(e.T2);
        else { il.Load(e.T3); il.ConstI4(bits); il.Emit(OpCodes.Shl); il.Load(e.T2); il.Emit(OpCodes.Or); }
        if (signed) il.SignExtend(size * 2);
        il.Store(e.T2);
        if (signed) { il.Load(e.T1); il.SignExtend(size); il.Store(e.T1); }
        il.Load(e.T1); il.Emit(OpCodes.Brfalse, de);
        if (signed)
        {
            // -1 would overflow the host division for a 64-bit dividend of -2^63: negate instead (the range check
            // below then raises #DE for it, as for any quotient that does not fit).
            var notMinusOne = il.Label(); var divided = il.Label();
            il.Load(e.T1); il.Const(ulong.MaxValue); il.Emit(OpCodes.Bne_Un, notMinusOne);
            il.Const(0); il.Load(e.T2); il.Emit(OpCodes.Sub); il.Store(e.Val);
            il.Emit(OpCodes.Br, divided);
            il.Mark(notMinusOne);
            il.Load(e.T2); il.Load(e.T1); il.Emit(OpCodes.Div); il.Store(e.Val);
            il.Mark(divided);
            // Fits iff quotient + 2^(bits-1) < 2^bits, unsigned.
            il.Load(e.Val); il.Const(1UL << (bits - 1)); il.Emit(OpCodes.Add);
        }
        else
        {
            il.Load(e.T2); il.Load(e.T1); il.Emit(OpCodes.Div_Un); il.Store(e.Val);
            il.Load(e.Val);
        }
        il.Const(Flags.SizeMask(size)); il.Emit(OpCodes.Bgt_Un, de);
        // remainder = dividend - quotient * divisor (one multiply instead of a second division)
        il.Load(e.T2); il.Load(e.Val); il.Load(e.T1); il.Emit(OpCodes.Mul); il.Emit(OpCodes.Sub); il.Truncate(size); il.Store(e.T4);
        il.Load(e.Val); il.Truncate(size); il.Store(e.Val);
    }

    /// <summary>Unsigned DIV of EDX:EAX or RDX:RAX (high half in T3, low in T2) by T1 with the host's own DIV, which gives
    /// quotient and remainder at once: quotient to Val, remainder to T4. #DE first, as the SDM says: a zero divisor, or a
    /// quotient wider than the operand, which for unsigned operands is exactly high half >= divisor (so is the first).</summary>
    /// <remarks>PERF: the 64-bit division with the remainder as dividend - quotient * divisor put a multiply after every
    /// division, in the dependency chain of loops such as Euclid's (a % b feeds the next division); a 64-bit guest DIV
    /// was a helper call. X86Base.DivRem is marked experimental in .NET 10 (SYSLIB5004): it is looked up by reflection,
    /// and without it the code falls back to the general path.</remarks>
    static void EmitUnsignedDivRem(BlockEmitter e, int size, MethodInfo divRem)
    {
        var il = e.Il;
        var de = e.RaiseException(Cpu.Vector.DE);
        // One compare for both: a zero divisor is at most any high half.
        il.Load(e.T3); il.Load(e.T1); il.Emit(OpCodes.Bge_Un, de);
        var result = il.NewStructLocal(divRem.ReturnType);
        if (size == 4)
        {
            il.Load(e.T2); il.Emit(OpCodes.Conv_U4); il.Load(e.T3); il.Emit(OpCodes.Conv_U4); il.Load(e.T1); il.Emit(OpCodes.Conv_U4);
        }
        else { il.Load(e.T2); il.Load(e.T3); il.Load(e.T1); }
        il.Call(divRem);
        il.Gen.Emit(OpCodes.Stloc, result);
        foreach (var (field, into) in new[] { ("Item1", e.Val), ("Item2", e.T4) }) // quotient, remainder
        {
            il.Gen.Emit(OpCodes.Ldloca, result); il.Gen.Emit(OpCodes.Ldfld, divRem.ReturnType.GetField(field)!);
            if (size == 4) il.Emit(OpCodes.Conv_U8);
            il.Store(into);
        }
    }

    static readonly MethodInfo? DivRem32 = System.Runtime.Intrinsics.X86.X86Base.IsSupported
        ? typeof(System.Runtime.Intrinsics.X86.X86Base).GetMethod("DivRem", [typeof(uint), typeof(uint), typeof(uint)]) : null;
    static readonly MethodInfo? DivRem64 = System.Runtime.Intrinsics.X86.X86Base.X64.IsSupported
        ? typeof(System.Runtime.Intrinsics.X86.X86Base.X64).GetMethod("DivRem", [typeof(ulong), typeof(ulong), typeof(ulong)]) : null;

    static Register CaseRegister(int index, int size) => size switch
    {
        8 => Register.RAX + index, 4 => Register.EAX + index, 2 => Register.AX + index, _ => Register.AL + index,
    };

    static readonly MethodInfo MMul128 = typeof(InstEmit).GetMethod(nameof(Mul128), BindingFlags.Public | BindingFlags.Static)!;
    static readonly MethodInfo MImul128 = typeof(InstEmit).GetMethod(nameof(Imul128), BindingFlags.Public | BindingFlags.Static)!;
    static readonly MethodInfo MDivide = typeof(InstEmit).GetMethod(nameof(DivideHelper), BindingFlags.Public | BindingFlags.Static)!;

    /// <summary>High half of the unsigned 128-bit product.</summary>
    public static ulong Mul128(ulong a, ulong b) => Math.BigMul(a, b, out _);

    /// <summary>High half of the signed 128-bit product.</summary>
    public static ulong Imul128(ulong a, ulong b) => (ulong)Math.BigMul((long)a, (long)b, out _);

    /// <summary>DIV/IDIV of <paramref name="hi"/>:<paramref name="lo"/> (each <paramref name="size"/> bytes; for
    /// size 1, AX in <paramref name="lo"/>) by <paramref name="divisor"/>: the quotient, the remainder in
    /// <paramref name="rem"/>, or #DE pending (SDM DIV/IDIV) with nothing else changed.</summary>
    public static unsafe ulong DivideHelper(CpuState* s, int size, int signed, ulong hi, ulong lo, ulong divisor, out ulong rem)
    {
        rem = 0;
        int bits = size * 8;
        ulong mask = Flags.SizeMask(size);
        if (divisor == 0) return DivideError(s);
        if (signed == 0)
        {
            UInt128 dividend = size == 1 ? lo & 0xFFFF : size == 8 ? ((UInt128)hi << 64) | lo : ((UInt128)(hi & mask) << bits) | (lo & mask);
            UInt128 q = dividend / divisor;
            if (q > mask) return DivideError(s);
            rem = (ulong)(dividend % divisor);
            return (ulong)q;
        }
        Int128 sd = size switch
        {
            1 => (short)lo,
            2 => (int)(((hi & 0xFFFF) << 16) | (lo & 0xFFFF)),
            4 => (long)(((hi & 0xFFFF_FFFF) << 32) | (lo & 0xFFFF_FFFF)),
            _ => (Int128)(((UInt128)hi << 64) | lo),
        };
        long dv = (long)(bits == 64 ? divisor : (ulong)((long)(divisor << (64 - bits)) >> (64 - bits)));
        if (dv == -1 && sd == Int128.MinValue) return DivideError(s); // the one quotient Int128 cannot hold
        Int128 sq = sd / dv;
        long min = bits == 64 ? long.MinValue : -(1L << (bits - 1)), max = bits == 64 ? long.MaxValue : (1L << (bits - 1)) - 1;
        if (sq < min || sq > max) return DivideError(s);
        rem = (ulong)(long)(sd % dv) & mask;
        return (ulong)(long)sq & mask;
    }

    static unsafe ulong DivideError(CpuState* s)
    {
        s->PendingFault = Cpu.Vector.DE + 1;
        s->PendingErrorCode = 0;
        return 0;
    }

    // CBW/CWDE/CDQE sign-extend the accumulator in place; CWD/CDQ/CQO fill DX/EDX/RDX with its sign.
    static void SignExtendAccumulator(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        switch (i.Mnemonic)
        {
            case Mnemonic.Cbw: e.LoadReg(Register.AL); il.SignExtend(1); il.Store(e.T1); e.StoreReg(Register.AX, e.T1); break;
            case Mnemonic.Cwde: e.LoadReg(Register.AX); il.SignExtend(2); il.Store(e.T1); e.StoreReg(Register.EAX, e.T1); break;
            case Mnemonic.Cdqe: e.LoadReg(Register.EAX); il.SignExtend(4); il.Store(e.T1); e.StoreReg(Register.RAX, e.T1); break;
            default:
                int size = i.Mnemonic switch { Mnemonic.Cwd => 2, Mnemonic.Cdq => 4, _ => 8 };
                e.LoadReg(CaseRegister(0, size)); il.SignExtend(size); il.ConstI4(63); il.Emit(OpCodes.Shr); il.Store(e.T1);
                e.StoreReg(CaseRegister(2, size), e.T1);
                break;
        }
    }

    // XCHG r, r (no memory operand: that form is a locked read-modify-write, left to tier 0).
    static void XchgRegisters(BlockEmitter e, in Instruction i)
    {
        e.LoadReg(i.Op0Register); e.Il.Store(e.T1);
        e.LoadReg(i.Op1Register); e.Il.Store(e.T2);
        e.StoreReg(i.Op0Register, e.T2);
        e.StoreReg(i.Op1Register, e.T1);
    }

    static void Bswap(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        bool q = i.Op0Register.GetSize() == 8;
        e.LoadReg(i.Op0Register);
        if (!q) il.Emit(OpCodes.Conv_U4);
        il.Call(q ? MReverse64 : MReverse32);
        if (!q) il.Emit(OpCodes.Conv_U8);
        il.Store(e.T1);
        e.StoreReg(i.Op0Register, e.T1);
    }

    static readonly MethodInfo MReverse32 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(uint)])!;
    static readonly MethodInfo MReverse64 = typeof(BinaryPrimitives).GetMethod(nameof(BinaryPrimitives.ReverseEndianness), [typeof(ulong)])!;

    /// <summary>ENTER with nesting level 0 (what compilers emit) at the stack width; nested levels stay in tier 0.</summary>
    static bool EnterLowerable(in Instruction i, int width) =>
        (i.Immediate8_2nd & 31) == 0 && i.Code == width switch { 8 => Code.Enterq_imm16_imm8, 4 => Code.Enterd_imm16_imm8, _ => Code.Enterw_imm16_imm8 };

    // ENTER imm16, 0: push RBP, RBP = the new RSP, RSP -= imm16. The store comes first, so a fault changes no register.
    static void Enter(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int w = e.StackWidth;
        var rbp = FramePointer(w);
        e.LoadReg(rbp); il.Store(e.T1);
        e.StackLinear(-w);
        e.EmitWrite(w, e.T1);
        e.StoreReg(rbp, e.Off);
        il.Load(e.Off); il.Const(i.Immediate16); il.Emit(OpCodes.Sub); il.Store(e.T2);
        e.SetStackPointer(e.T2);
    }

    static bool LeaveOfWidth(in Instruction i, int width) => i.Code == width switch { 8 => Code.Leaveq, 4 => Code.Leaved, _ => Code.Leavew };

    static Register FramePointer(int width) => width switch { 8 => Register.RBP, 4 => Register.EBP, _ => Register.BP };

    // LEAVE: RSP = RBP, then POP RBP. The read comes first, from RBP, so a fault leaves both registers as they were.
    static void Leave(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        int w = e.StackWidth;
        e.StackLinear(5, 0);
        e.EmitRead(w);
        il.Load(e.Off); il.Const((ulong)w); il.Emit(OpCodes.Add); il.Store(e.T2);
        e.SetStackPointer(e.T2);
        e.StoreReg(FramePointer(w), e.Val);
    }
}
