using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Tests.Differential;

/// <summary>What the comparison looks at for one case: per-GPR bit masks and the RFLAGS bits.</summary>
public sealed class CompareMask
{
    public readonly ulong[] Gpr = [.. Enumerable.Repeat(ulong.MaxValue, 16)];
    public ulong Flags;

    public CompareMask Clone()
    {
        var m = new CompareMask { Flags = Flags };
        Gpr.CopyTo(m.Gpr, 0);
        return m;
    }
}

/// <summary>
/// Results the SDM leaves undefined for one concrete case, decided from the actual shift count or source value rather
/// than from the opcode: Iced's static flag table cannot know that <c>rcl r/m16, 17</c> has a masked count other than 1.
/// Undefined results are masked on every host, whatever its vendor (vendor-specific *defined* behaviour lives in
/// <see cref="VendorQuirks"/>).
/// </summary>
public static class UndefinedResults
{
    const RflagsBits Status = RflagsBits.OF | RflagsBits.SF | RflagsBits.ZF | RflagsBits.AF | RflagsBits.PF | RflagsBits.CF;

    public static bool IsShift(Mnemonic m) => m is Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar
        or Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr or Mnemonic.Shld or Mnemonic.Shrd;

    /// <summary>The count after the architectural mask (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD: 6 bits for a
    /// 64-bit operand, else 5). <paramref name="cl"/> is CL's value when the count is in CL.</summary>
    public static int MaskedCount(in Instruction i, byte cl)
    {
        int last = i.OpCount - 1;
        int raw = i.GetOpKind(last) == OpKind.Register ? cl : i.Immediate8;
        return raw & (OperandBits(i) == 64 ? 0x3F : 0x1F);
    }

    public static int OperandBits(in Instruction i) =>
        8 * (i.Op0Kind == OpKind.Register ? i.Op0Register.GetSize() : i.MemorySize.GetSize());

    /// <summary>
    /// Flags a shift or rotate by <paramref name="count"/> (already masked) leaves undefined and those it writes, and
    /// whether its destination is undefined. A masked count of 0 changes nothing.
    /// </summary>
    public static (RflagsBits Undefined, RflagsBits Modified, bool DestinationUndefined) Shift(Mnemonic m, int bits, int count)
    {
        if (count == 0) return (RflagsBits.None, RflagsBits.None, false);
        // OF is defined only for 1-bit shifts and rotates (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD).
        RflagsBits of = count == 1 ? RflagsBits.None : RflagsBits.OF;
        switch (m)
        {
            case Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr:
                return (of, RflagsBits.CF | RflagsBits.OF, false);
            case Mnemonic.Shld or Mnemonic.Shrd:
                // A count above the operand size (possible only for 16-bit operands) leaves the result and every flag undefined.
                if (count > bits) return (Status, Status, true);
                return (RflagsBits.AF | of, Status, false);
            default:
                // AF is undefined for any non-zero count; CF is undefined for SHL/SHR counts of at least the operand size.
                RflagsBits cf = count >= bits && m is Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr ? RflagsBits.CF : RflagsBits.None;
                return (RflagsBits.AF | of | cf, Status, false);
        }
    }

    /// <summary>Flags undefined after <paramref name="i"/> when its shift count (if any) is known from the encoding alone.</summary>
    public static (RflagsBits Undefined, RflagsBits Modified) StaticFlags(in Instruction i)
    {
        if (IsShift(i.Mnemonic) && i.GetOpKind(i.OpCount - 1) != OpKind.Register)
        {
            var (u, m, _) = Shift(i.Mnemonic, OperandBits(i), MaskedCount(i, 0));
            return (u, m);
        }
        return (i.RflagsUndefined, i.RflagsModified);
    }

    /// <summary>Narrows <paramref name="mask"/> to what the SDM defines for this case, given its input state.</summary>
    public static void Apply(in Instruction i, MachineState input, Func<ulong, int, ulong> readMemory, CompareMask mask)
    {
        RflagsBits undefined = i.RflagsUndefined;
        if (IsShift(i.Mnemonic))
        {
            var (u, _, destUndefined) = Shift(i.Mnemonic, OperandBits(i), MaskedCount(i, (byte)input.Gpr[1]));
            undefined = u;
            if (destUndefined && i.Op0Kind == OpKind.Register) mask.Gpr[CaseBuilder.Index(i.Op0Register)] = 0;
        }
        else if (i.Mnemonic is Mnemonic.Bsf or Mnemonic.Bsr)
        {
            // A zero source leaves the destination undefined (SDM BSF/BSR; AMD documents it unchanged).
            ulong src = i.Op1Kind == OpKind.Register
                ? input.Gpr[CaseBuilder.Index(i.Op1Register)]
                : readMemory(MemoryAddress(i, input), i.MemorySize.GetSize());
            int bits = OperandBits(i);
            if ((bits == 64 ? src : src & ((1UL << bits) - 1)) == 0) mask.Gpr[CaseBuilder.Index(i.Op0Register)] = 0;
        }
        mask.Flags &= ~FlagBits(undefined);
    }

    /// <summary>Adds an instruction at <paramref name="ip"/> to a random sequence: false if it reads a flag an earlier one
    /// left undefined; otherwise records which flags are defined should it fault, and updates <paramref name="undefined"/>.</summary>
    public static bool Append(in Instruction decoded, ulong ip, ref RflagsBits undefined, Dictionary<ulong, ulong> faultMask)
    {
        if ((decoded.RflagsRead & undefined) != 0) return false;
        faultMask[ip] = (RFlags.Status | RFlags.DF) & ~FlagBits(undefined);
        var (u, m) = StaticFlags(decoded);
        bool byCl = IsShift(decoded.Mnemonic) && decoded.GetOpKind(decoded.OpCount - 1) == OpKind.Register;
        undefined = (undefined & ~(byCl ? RflagsBits.None : m)) | u;
        return true;
    }

    public static ulong FlagBits(RflagsBits f)
    {
        ulong m = 0;
        if ((f & RflagsBits.OF) != 0) m |= 1UL << 11;
        if ((f & RflagsBits.SF) != 0) m |= 1UL << 7;
        if ((f & RflagsBits.ZF) != 0) m |= 1UL << 6;
        if ((f & RflagsBits.AF) != 0) m |= 1UL << 4;
        if ((f & RflagsBits.PF) != 0) m |= 1UL << 2;
        if ((f & RflagsBits.CF) != 0) m |= 1UL << 0;
        return m;
    }


    /// <summary>The linear address of <paramref name="i"/>'s memory operand for the input registers (flat segments).</summary>
    internal static ulong MemoryAddress(in Instruction i, MachineState input)
    {
        int op = 0;
        while (i.GetOpKind(op) != OpKind.Memory) op++;
        ulong rip = i.NextIP;
        return i.GetVirtualAddress(op, 0, (reg, _, _) => reg switch
        {
            Register.RIP => rip,
            Register.ES or Register.CS or Register.SS or Register.DS => 0,
            _ => reg.GetSize() == 4 ? (uint)input.Gpr[CaseBuilder.Index(reg)] : input.Gpr[CaseBuilder.Index(reg)],
        });
    }
}
