using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.X86;

/// <summary>
/// What an x86 instruction's operands are, from its decoded form alone: register slots and sizes, memory and address
/// sizes, segments, branch-target wrapping. Both tiers ask these (the interpreter to run an instruction, the translator
/// to lower it), so they live here rather than in either tier.
/// </summary>
public static class X86Operands
{
    /// <summary>48-bit canonical form: bits 63..47 all equal (SDM 3.3.7.1).</summary>
    public static bool IsCanonical(ulong a) => (ulong)((long)(a << 16) >> 16) == a;

    /// <summary>Per Iced register and memory size, the facts tier 0 asks for on every operand, as plain byte tables: Iced's
    /// own <c>GetSize</c>/<c>GetFullRegister</c> go through a RegisterInfo lookup each time, which was 2-3% of a Linux boot.</summary>
    static class OperandTables
    {
        /// <summary>GPR slot in bits 0-3, bit 4 set for AH..BH (bits 8-15 of the slot); 0 for non-GPRs.</summary>
        public static readonly byte[] Slot = new byte[Enum.GetValues<Register>().Length], RegSize = new byte[Slot.Length];
        public static readonly ushort[] MemSize = BuildMemSizes();

        static OperandTables()
        {
            foreach (var r in Enum.GetValues<Register>())
            {
                RegSize[(int)r] = (byte)r.GetSize(); // at most 64 (ZMM)
                if (r.IsGPR())
                    Slot[(int)r] = r >= Register.AH && r <= Register.BH ? (byte)(16 | (r - Register.AH)) : (byte)(r.GetFullRegister() - Register.RAX);
            }
        }

        static ushort[] BuildMemSizes()
        {
            var t = new ushort[Enum.GetValues<MemorySize>().Length];
            foreach (var m in Enum.GetValues<MemorySize>()) t[(int)m] = (ushort)m.GetSize();
            return t;
        }
    }

    /// <summary>Size in bytes of a register (Iced's GetSize, from a table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int RegSize(Register r) => OperandTables.RegSize[(int)r];

    /// <summary>Size in bytes of a memory operand (Iced's GetSize, from a table).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int MemSize(MemorySize m) => OperandTables.MemSize[(int)m];

    /// <summary>GPR slot and bit shift of an Iced general register (AH..BH live in bits 8-15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int GprIndex(Register r, out int shift)
    {
        int x = OperandTables.Slot[(int)r];
        shift = (x & 16) >> 1;
        return x & 15;
    }

    /// <summary>Address size in bytes of an instruction's memory operand (from its base/index registers).</summary>
    public static int AddressSize(in Instruction i)
    {
        if (i.MemoryBase != Register.None)
            return i.MemoryBase is Register.RIP ? 8 : i.MemoryBase is Register.EIP ? 4 : RegSize(i.MemoryBase);
        if (i.MemoryIndex != Register.None) return RegSize(i.MemoryIndex);
        return i.MemoryDisplSize is 2 or 4 or 8 ? i.MemoryDisplSize : 8;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static SegReg SegOf(Register seg) => seg switch
    {
        Register.ES => SegReg.Es, Register.CS => SegReg.Cs, Register.SS => SegReg.Ss,
        Register.FS => SegReg.Fs, Register.GS => SegReg.Gs, _ => SegReg.Ds,
    };

    /// <summary>Operand size in bytes of operand <paramref name="op"/>.</summary>
    public static int OpSize(in Instruction i, int op)
    {
        var k = i.GetOpKind(op);
        if (k == OpKind.Register) return RegSize(i.GetOpRegister(op));
        if (k == OpKind.Memory) return MemSize(i.MemorySize);
        return k switch
        {
            OpKind.Immediate8 => 1, OpKind.Immediate16 or OpKind.Immediate8to16 => 2,
            OpKind.Immediate32 or OpKind.Immediate8to32 => 4, _ => 8,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong SignExtend(ulong v, int size) => size switch
    {
        1 => (ulong)(long)(sbyte)v, 2 => (ulong)(long)(short)v, 4 => (ulong)(long)(int)v, _ => v,
    };

    public static ulong BranchTarget(in Instruction i, ulong target) => i.CodeSize == CodeSize.Code64
        ? target
        : OperandSizeOfBranch(i) == 2 ? target & 0xFFFF : target & 0xFFFF_FFFF;

    static int OperandSizeOfBranch(in Instruction i)
    {
        int inc = i.StackPointerIncrement;
        if (inc != 0) return Math.Abs(inc);
        return i.Op0Kind switch
        {
            OpKind.NearBranch16 => 2,
            OpKind.NearBranch32 => 4,
            OpKind.Register => RegSize(i.Op0Register),
            OpKind.Memory => MemSize(i.MemorySize),
            _ => 8,
        };
    }
}
