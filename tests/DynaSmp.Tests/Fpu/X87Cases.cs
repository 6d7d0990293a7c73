using DynaSmp.Tests.Differential;
using Iced.Intel;

namespace DynaSmp.Tests.Fpu;

/// <summary>Random operands biased to the cases that matter for floating point: signed zeros, denormals and
/// pseudo-denormals, infinities, QNaN/SNaN/indefinite, unsupported encodings, values at rounding boundaries and at
/// the edges of the exponent and integer ranges.</summary>
public static class FpValues
{
    public static (ushort Se, ulong Mant) Ext(Rng r)
    {
        ushort sign = (ushort)(r.Percent(50) ? 0x8000 : 0);
        ulong m = r.NextU64() | 1UL << 63;
        int kind = r.Next(22);
        switch (kind)
        {
            case 0: return (sign, 0);
            case 1: return (sign, r.NextU64() >> r.Next(1, 64)); // denormal
            case 2: return (sign, m); // pseudo-denormal
            case 3: return ((ushort)(sign | 0x7FFF), 1UL << 63); // infinity
            case 4: return ((ushort)(sign | 0x7FFF), 0xC000_0000_0000_0000 | (r.Percent(50) ? r.NextU64() : 0)); // QNaN
            case 5: return ((ushort)(sign | 0x7FFF), 0x8000_0000_0000_0000 | (r.NextU64() >> 2 | 1)); // SNaN
            case 6: return (r.Percent(90) ? (ushort)(sign | r.Next(1, 0x7FFF)) : (ushort)(sign | 0x7FFF), r.NextU64() >> 1); // unnormal / pseudo-NaN/inf
            case 7: // small integers
            {
                long v = r.Next(-3000, 3000);
                return Int(v);
            }
            case 8: return ((ushort)(sign | r.Next(0x7FF0, 0x7FFF)), m); // huge
            case 9: return ((ushort)(sign | r.Next(1, 80)), m); // tiny
            case 10: // around the single/double exponent limits
            {
                int[] edges = [16383 - 126, 16383 - 149, 16383 + 127, 16383 - 1022, 16383 - 1074, 16383 + 1023];
                return ((ushort)(sign | (r.Pick(edges) + r.Next(-3, 4))), Boundary(r, m));
            }
            case 11: case 12: return ((ushort)(sign | (16383 + r.Next(-8, 9))), Boundary(r, m)); // rounding boundaries
            case 13: // integer range edges
            {
                int[] e = [16383 + 15, 16383 + 31, 16383 + 63, 16383 + 14, 16383 + 30, 16383 + 62, 16383 + 59, 16383 + 60];
                return ((ushort)(sign | (r.Pick(e) + r.Next(-1, 2))), r.Percent(50) ? 1UL << 63 | (uint)r.Next(0, 4) : m);
            }
            case 14: return ((ushort)(sign | 16383 + r.Next(-1, 2)), r.Percent(50) ? 1UL << 63 : ~0UL << r.Next(0, 3)); // near ±1, ±2
            case 15: return (0xFFFF, 0xC000_0000_0000_0000); // indefinite
            default: return ((ushort)(sign | (16383 + r.Next(-70, 71))), r.Percent(30) ? Boundary(r, m) : m);
        }
    }

    /// <summary>A significand whose bits below the single/double/extended rounding points are a tie, just below or
    /// just above one, or have few significant bits.</summary>
    static ulong Boundary(Rng r, ulong m)
    {
        int cut = r.Pick(new[] { 40, 11, 1, 2, 32 });
        ulong keep = m & ~((1UL << cut) - 1);
        ulong half = 1UL << (cut - 1);
        return r.Next(6) switch
        {
            0 => keep | half,
            1 => keep | (half - 1),
            2 => keep | half | 1,
            3 => keep,
            4 => 1UL << 63 | (ulong)r.Next(0, 16) << r.Next(0, 60),
            _ => keep | ((1UL << cut) - 1),
        };
    }

    public static (ushort Se, ulong Mant) Int(long v)
    {
        if (v == 0) return (0, 0);
        ulong mag = v < 0 ? (ulong)-v : (ulong)v;
        int lz = System.Numerics.BitOperations.LeadingZeroCount(mag);
        return ((ushort)((v < 0 ? 0x8000 : 0) | (16383 + 63 - lz)), mag << lz);
    }

    public static uint F32(Rng r)
    {
        uint s = r.Percent(50) ? 0x8000_0000u : 0;
        uint f = (uint)r.NextU64() & 0x7F_FFFF;
        return r.Next(10) switch
        {
            0 => s,
            1 => s | (f >> r.Next(0, 23) | 1), // denormal
            2 => s | 0x7F80_0000,
            3 => s | 0x7FC0_0000 | f,
            4 => s | 0x7F80_0000 | (f >> 1 | 1), // SNaN
            5 => s | (uint)r.Next(1, 4) << 23 | f,
            6 => s | (uint)r.Next(0xFB, 0xFF) << 23 | f,
            _ => s | (uint)(127 + r.Next(-30, 31)) << 23 | (r.Percent(30) ? f & ~0xFFFu : f),
        };
    }

    public static ulong F64(Rng r)
    {
        ulong s = r.Percent(50) ? 1UL << 63 : 0;
        ulong f = r.NextU64() & 0xF_FFFF_FFFF_FFFF;
        return r.Next(10) switch
        {
            0 => s,
            1 => s | (f >> r.Next(0, 52) | 1),
            2 => s | 0x7FF0_0000_0000_0000,
            3 => s | 0x7FF8_0000_0000_0000 | f,
            4 => s | 0x7FF0_0000_0000_0000 | (f >> 1 | 1),
            5 => s | (ulong)r.Next(1, 4) << 52 | f,
            6 => s | (ulong)r.Next(0x7FB, 0x7FF) << 52 | f,
            _ => s | (ulong)(1023 + r.Next(-70, 71)) << 52 | (r.Percent(30) ? f & ~0xFFFFFFUL : f),
        };
    }

    public static ulong Integer(Rng r, int bits)
    {
        long[] edges = [0, 1, -1, 2, -2, short.MaxValue, short.MinValue, int.MaxValue, int.MinValue, long.MaxValue, long.MinValue];
        long v = r.Next(4) switch
        {
            0 => r.Pick(edges) + r.Next(-1, 2),
            1 => r.Next(-1000, 1000),
            _ => (long)r.NextU64() >> r.Next(0, 64),
        };
        return bits == 64 ? (ulong)v : (ulong)v & ((1UL << bits) - 1);
    }

    public static (ulong Lo, ushort Hi) Bcd(Rng r)
    {
        int digits = r.Next(0, 19);
        ulong lo = 0;
        ushort hi = (ushort)(r.Percent(50) ? 0x8000 : 0);
        for (int k = 0; k < digits; k++)
        {
            ulong d = r.Percent(1) ? (ulong)r.Next(10, 16) : (ulong)r.Next(10); // an invalid digit now and then
            if (k < 16) lo |= d << (4 * k);
            else hi |= (ushort)(d << (4 * (k - 16)));
        }
        return (lo, hi);
    }
}

/// <summary>x87 differential case generation: a random FPU state (TOP, tags, FCW precision/rounding/masks, FSW flags
/// consistent with the masks so no #MF is pending) and a random form of an instruction of the group.</summary>
public static class X87Cases
{
    public static Code[] CodesFor(params Mnemonic[] mnemonics)
    {
        var set = new HashSet<Mnemonic>(mnemonics);
        var list = new List<Code>();
        foreach (Code code in Enum.GetValues<Code>())
        {
            if (!set.Contains(code.Mnemonic())) continue;
            var op = code.ToOpCode();
            if (op.Encoding != EncodingKind.Legacy || !op.Mode64) continue;
            list.Add(code);
        }
        return list.ToArray();
    }

    public static byte[] RandomImage(Rng r, bool allMasked = false)
    {
        var im = new byte[512];
        int masks = allMasked || r.Percent(60) ? 0x3F : r.Next(64);
        int pc = r.Pick(new[] { 0, 2, 3, 3 });
        int rc = r.Next(4);
        ushort fcw = (ushort)(0x40 | masks | pc << 8 | rc << 10);
        int top = r.Next(8);
        int flags = r.Next(128) & masks; // only masked exception flags: nothing pending
        if ((flags & 1) == 0) flags &= ~0x40;
        ushort fsw = (ushort)(flags | top << 11 | (r.Next(16) is var cc ? ((cc & 7) << 8 | (cc & 8) << 11) : 0));
        byte tag = 0;
        int fullness = r.Next(4); // 0: mostly empty ... 3: full
        for (int p = 0; p < 8; p++) if (r.Next(4) <= fullness) tag |= (byte)(1 << p);
        BitConverter.TryWriteBytes(im.AsSpan(0), fcw);
        BitConverter.TryWriteBytes(im.AsSpan(2), fsw);
        im[4] = tag;
        BitConverter.TryWriteBytes(im.AsSpan(24), 0x1F80u);
        for (int st = 0; st < 8; st++)
        {
            var (se, m) = FpValues.Ext(r);
            BitConverter.TryWriteBytes(im.AsSpan(32 + 16 * st), m);
            BitConverter.TryWriteBytes(im.AsSpan(32 + 16 * st + 8), se);
        }
        for (int k = 160; k < 416; k += 8) BitConverter.TryWriteBytes(im.AsSpan(k), r.NextU64());
        return im;
    }

    /// <summary>Fills 16 bytes at buffer offset <paramref name="off"/> with a value of the operand's memory type.</summary>
    public static void FillMemory(Rng r, byte[] buf, int off, MemorySize size)
    {
        var s = buf.AsSpan(off);
        switch (size)
        {
            case MemorySize.Float32: BitConverter.TryWriteBytes(s, FpValues.F32(r)); break;
            case MemorySize.Float64: BitConverter.TryWriteBytes(s, FpValues.F64(r)); break;
            case MemorySize.Float80:
            {
                var (se, m) = FpValues.Ext(r);
                BitConverter.TryWriteBytes(s, m);
                BitConverter.TryWriteBytes(s[8..], se);
                break;
            }
            case MemorySize.Int16: BitConverter.TryWriteBytes(s, (ushort)FpValues.Integer(r, 16)); break;
            case MemorySize.Int32: BitConverter.TryWriteBytes(s, (uint)FpValues.Integer(r, 32)); break;
            case MemorySize.Int64: BitConverter.TryWriteBytes(s, FpValues.Integer(r, 64)); break;
            case MemorySize.Bcd:
            {
                var (lo, hi) = FpValues.Bcd(r);
                BitConverter.TryWriteBytes(s, lo);
                BitConverter.TryWriteBytes(s[8..], hi);
                break;
            }
            case MemorySize.UInt16: // FLDCW: a control word with a valid precision field
                BitConverter.TryWriteBytes(s, (ushort)(0x40 | r.Next(64) | r.Pick(new[] { 0, 2, 3 }) << 8 | r.Next(4) << 10));
                break;
        }
    }

    /// <summary>A random instance of <paramref name="code"/>: ST(i) operands random, memory at [rbx + 16k].</summary>
    public static Instruction Instance(Rng r, Code code, out int memOff)
    {
        var op = code.ToOpCode();
        memOff = -1;
        var regs = new List<Register>();
        MemoryOperand? mem = null;
        for (int k = 0; k < op.OpCount; k++)
        {
            switch (op.GetOpKind(k))
            {
                case OpCodeOperandKind.st0: regs.Add(Register.ST0); break;
                case OpCodeOperandKind.sti_opcode: regs.Add(Register.ST0 + r.Next(8)); break;
                case OpCodeOperandKind.mem:
                    memOff = 16 * r.Next(8);
                    mem = new MemoryOperand(Register.RBX, memOff);
                    break;
                default: regs.Add(Register.AX); break; // FNSTSW AX
            }
        }
        if (mem is { } m) return Instruction.Create(code, m);
        return regs.Count switch
        {
            0 => Instruction.Create(code),
            1 => Instruction.Create(code, regs[0]),
            _ => Instruction.Create(code, regs[0], regs[1]),
        };
    }

    public static FpCase Generate(string group, Code[] codes, ulong seed, Action<Rng, FpCase>? adjust = null)
    {
        var r = new Rng(seed);
        var code = r.Pick(codes);
        var insn = Instance(r, code, out int memOff);
        var buf = new byte[NativeRunner.BufferSize];
        for (int k = 0; k < buf.Length; k += 8) BitConverter.TryWriteBytes(buf.AsSpan(k), r.NextU64());
        if (memOff >= 0)
        {
            var size = code.ToOpCode().MemorySize;
            FillMemory(r, buf, FpuDiff.MemOffset + memOff, size);
        }
        var c = FpuDiff.Make(group, seed, insn, RandomImage(r), FpuDiff.BaseInput(r), buf);
        if (memOff >= 0) MaskEnvironmentPointers(c, code, FpuDiff.MemOffset + memOff);
        adjust?.Invoke(r, c);
        return c;
    }

    /// <summary>FNSTENV/FNSAVE store FIP/FCS/FOP/FDP/FDS, which are not compared.</summary>
    static void MaskEnvironmentPointers(FpCase c, Code code, int off)
    {
        var ms = code.ToOpCode().MemorySize;
        if (c.Insn.Mnemonic is not (Mnemonic.Fnstenv or Mnemonic.Fnsave)) return;
        if (ms is MemorySize.FpuEnv28 or MemorySize.FpuState108) for (int k = 12; k < 28; k++) c.BufferMask[off + k] = 0;
        else for (int k = 6; k < 14; k++) c.BufferMask[off + k] = 0;
    }
}
