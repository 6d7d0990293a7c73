using System.Buffers.Binary;
using System.Numerics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Bit instructions: BT/BTS/BTR/BTC, BSF/BSR, POPCNT, LZCNT, TZCNT, BSWAP and the BMI1 group
/// ANDN, BEXTR, BLSI, BLSMSK, BLSR (SDM Vol. 2A/2B pages of the same names).</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteBits(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc: BitTest(c, i); return true;
            case Mnemonic.Bsf: case Mnemonic.Bsr: BitScan(c, i); return true;
            case Mnemonic.Popcnt: case Mnemonic.Lzcnt: case Mnemonic.Tzcnt: BitCount(c, i); return true;
            case Mnemonic.Bswap: Bswap(c.State, i); return true;
            case Mnemonic.Andn: case Mnemonic.Bextr: case Mnemonic.Blsi: case Mnemonic.Blsmsk: case Mnemonic.Blsr:
                Bmi1(c, i); return true;
            default: return false;
        }
    }

    static ulong BitApply(Mnemonic m, ulong v, ulong bit) => m switch
    {
        Mnemonic.Bts => v | bit, Mnemonic.Btr => v & ~bit, Mnemonic.Btc => v ^ bit, _ => v,
    };

    static void BitTest(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        int bits = size * 8;
        bool writes = i.Mnemonic != Mnemonic.Bt;
        if (i.HasLockPrefix && (!writes || i.Op0Kind != OpKind.Memory)) throw CpuFault.UD();
        ulong bit;
        if (i.Op0Kind == OpKind.Register)
        {
            // Register destination: the offset is taken modulo the operand width.
            bit = 1UL << (int)(ReadOp(c, i, 1, size) & (ulong)(bits - 1));
            ulong v = ReadReg(s, i.Op0Register);
            if (writes) WriteReg(s, i.Op0Register, BitApply(i.Mnemonic, v, bit));
            Flags.SetStatus(s, RFlags.CF, (v & bit) != 0 ? RFlags.CF : 0);
            return;
        }
        ulong lin;
        if (i.Op1Kind == OpKind.Register)
        {
            // SDM "BT": a register offset is signed and selects the operand-sized unit at
            // EA + size * (BitOffset DIV bits), so it reaches memory below and above the operand.
            long off = (long)SignExtend(ReadReg(s, i.Op1Register), size);
            long unit = off >> (bits == 16 ? 4 : bits == 32 ? 5 : 6);
            ulong ea = EffectiveOffset(s, i) + (ulong)(unit * size);
            int asz = AddressSize(i);
            if (asz == 2) ea &= 0xFFFF; else if (asz == 4) ea &= 0xFFFF_FFFF;
            lin = CheckedLinear(s, i.MemorySegment, ea, size, writes);
            bit = 1UL << (int)(off & (bits - 1));
        }
        else
        {
            // An immediate offset stays inside the operand.
            lin = MemAddress(s, i, size, writes);
            bit = 1UL << (int)(i.GetImmediate(1) & (ulong)(bits - 1));
        }
        ulong old;
        byte* p = i.HasLockPrefix ? Mem.HostPointer(c, lin, size, MemAccess.Write) : null;
        if (p != null)
        {
            ulong next;
            do
            {
                old = Atomics.Load(p, size);
                next = BitApply(i.Mnemonic, old, bit);
            } while (Atomics.CompareExchange(p, size, next, old) != old);
        }
        else
        {
            old = Mem.Read(c, lin, size);
            if (writes) Mem.Write(c, lin, size, BitApply(i.Mnemonic, old, bit));
        }
        // CF is the selected bit; ZF is unaffected; OF, SF, AF, PF are undefined and left unchanged.
        Flags.SetStatus(s, RFlags.CF, (old & bit) != 0 ? RFlags.CF : 0);
    }

    /// <summary>BSF/BSR: a zero source sets ZF and leaves the destination unchanged (as Intel and AMD hardware do).</summary>
    static void BitScan(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong v = ReadOp(c, i, 1, size);
        if (v == 0)
        {
            Flags.SetStatus(s, RFlags.ZF, RFlags.ZF);
            return;
        }
        int idx = i.Mnemonic == Mnemonic.Bsf ? BitOperations.TrailingZeroCount(v) : 63 - BitOperations.LeadingZeroCount(v);
        WriteReg(s, i.Op0Register, (ulong)idx);
        Flags.SetStatus(s, RFlags.ZF, 0);
    }

    static void BitCount(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        int bits = size * 8;
        ulong v = ReadOp(c, i, 1, size);
        ulong res, f;
        switch (i.Mnemonic)
        {
            case Mnemonic.Popcnt:
                // POPCNT clears OF, SF, AF, CF, PF and sets ZF for a zero source.
                res = (ulong)BitOperations.PopCount(v);
                f = v == 0 ? RFlags.ZF : 0;
                WriteReg(s, i.Op0Register, res);
                Flags.SetStatus(s, RFlags.Status, f);
                return;
            case Mnemonic.Lzcnt:
                res = v == 0 ? (ulong)bits : (ulong)(BitOperations.LeadingZeroCount(v) - (64 - bits));
                break;
            default: // Tzcnt
                res = v == 0 ? (ulong)bits : (ulong)BitOperations.TrailingZeroCount(v);
                break;
        }
        // LZCNT/TZCNT: CF = source is zero, ZF = result is zero; OF, SF, PF, AF are undefined (left unchanged).
        f = (v == 0 ? RFlags.CF : 0) | (res == 0 ? RFlags.ZF : 0);
        WriteReg(s, i.Op0Register, res);
        Flags.SetStatus(s, RFlags.CF | RFlags.ZF, f);
    }

    static void Bswap(CpuState* s, in Instruction i)
    {
        Register r = i.Op0Register;
        ulong v = ReadReg(s, r);
        switch (r.GetSize())
        {
            case 8: WriteReg(s, r, BinaryPrimitives.ReverseEndianness(v)); break;
            case 4: WriteReg(s, r, BinaryPrimitives.ReverseEndianness((uint)v)); break;
            // BSWAP r16 is undefined (SDM); Intel and AMD hardware leave 0 in the low 16 bits.
            default: WriteReg(s, r, 0); break;
        }
    }

    static void Bmi1(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        int bits = size * 8;
        ulong mask = Flags.SizeMask(size);
        ulong res, cf;
        switch (i.Mnemonic)
        {
            case Mnemonic.Andn:
                res = ~ReadReg(s, i.Op1Register) & ReadOp(c, i, 2, size) & mask;
                cf = 0;
                break;
            case Mnemonic.Bextr:
            {
                ulong src = ReadOp(c, i, 1, size);
                ulong ctl = ReadReg(s, i.Op2Register);
                int start = (int)(ctl & 0xFF), len = (int)((ctl >> 8) & 0xFF);
                res = start >= bits ? 0 : src >> start;
                if (len < 64) res &= (1UL << len) - 1;
                cf = 0;
                break;
            }
            default:
            {
                ulong src = ReadOp(c, i, 1, size);
                res = i.Mnemonic switch
                {
                    Mnemonic.Blsi => (0 - src) & src,
                    Mnemonic.Blsmsk => (src - 1) ^ src,
                    _ => (src - 1) & src,
                } & mask;
                // BLSI: CF = source non-zero; BLSMSK, BLSR: CF = source zero.
                cf = (i.Mnemonic == Mnemonic.Blsi) == (src != 0) ? 1UL : 0;
                break;
            }
        }
        WriteReg(s, i.Op0Register, res);
        // OF cleared; SF/ZF from the result (BEXTR's SF and all AF/PF are undefined: cleared).
        ulong f = ShiftSzp(res, size) & (RFlags.ZF | RFlags.SF);
        if (i.Mnemonic == Mnemonic.Bextr) f &= ~RFlags.SF;
        if (cf != 0) f |= RFlags.CF;
        Flags.SetStatus(s, RFlags.Status, f);
    }
}
