using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace DynaSmp.Tests.Differential;

/// <summary>Adjusts operand values after random filling (divisors, shift counts...). False asks for a new attempt.</summary>
public delegate bool Fixup(CaseBuilder b, ref Instruction i);

/// <summary>One instruction group: its mnemonics, how to make an instruction of one of its codes, its share of the cases.</summary>
public sealed class InstructionGroup
{
    public required string Name { get; init; }
    public required int Weight { get; init; }
    public required Mnemonic[] Mnemonics { get; init; }
    public EncodingKind Encoding { get; init; } = EncodingKind.Legacy;
    /// <summary>When set, only codes whose CPUID features are all in this list (the SSE groups stay SSE2).</summary>
    public CpuidFeature[]? OnlyFeatures { get; init; }
    public Func<CaseBuilder, Code, Instruction>? Make { get; init; }
    /// <summary>Codes to pick from instead of those of <see cref="Mnemonics"/> (when <see cref="Make"/> ignores the code).</summary>
    public Code[]? ExplicitCodes { get; init; }
    public Fixup? Fixup { get; init; }

    Code[]? _codes;
    /// <summary>The codes the host can run (see <see cref="HostFeatures"/>), and how many the host lacks.</summary>
    public Code[] Codes => _codes ??= ExplicitCodes ?? ComputeCodes();
    public int SkippedForHost { get; private set; }

    Code[] ComputeCodes()
    {
        var list = new List<Code>();
        foreach (Code c in Enum.GetValues<Code>())
        {
            if (Array.IndexOf(Mnemonics, c.Mnemonic()) < 0) continue;
            var info = c.ToOpCode();
            if (!info.IsInstruction || !info.Mode64 || info.Encoding != Encoding) continue;
            if (c == Code.Bswap_r16) continue; // BSWAP r16: result undefined (SDM BSWAP)
            bool ok = true;
            for (int n = 0; n < info.OpCount; n++) ok &= CaseBuilder.Supported(info.GetOpKind(n));
            if (!ok) continue;
            if (OnlyFeatures != null && Array.Exists(c.CpuidFeatures(), f => Array.IndexOf(OnlyFeatures, f) < 0)) continue;
            if (!HostFeatures.HasAll(c)) { SkippedForHost++; continue; }
            list.Add(c);
        }
        return list.ToArray();
    }

    public override string ToString() => Name;
}

/// <summary>CPUID features of the host (System.Runtime.Intrinsics, /proc/cpuinfo for the rest).</summary>
public static class HostFeatures
{
    static readonly HashSet<string> CpuInfo = ReadCpuInfo();

    static HashSet<string> ReadCpuInfo()
    {
        var set = new HashSet<string>();
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("flags", StringComparison.Ordinal))
                {
                    foreach (var f in line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)) set.Add(f);
                    break;
                }
        }
        catch (IOException) { }
        return set;
    }

    public static bool Has(CpuidFeature f) => f switch
    {
        CpuidFeature.INTEL8086 or CpuidFeature.INTEL186 or CpuidFeature.INTEL286 or CpuidFeature.INTEL386
            or CpuidFeature.INTEL486 or CpuidFeature.X64 or CpuidFeature.CMOV or CpuidFeature.CX8 => true,
        CpuidFeature.SSE => Sse.IsSupported,
        CpuidFeature.SSE2 => Sse2.IsSupported,
        CpuidFeature.SSE3 => Sse3.IsSupported,
        CpuidFeature.SSSE3 => Ssse3.IsSupported,
        CpuidFeature.SSE4_1 => Sse41.IsSupported,
        CpuidFeature.SSE4_2 => Sse42.IsSupported,
        CpuidFeature.POPCNT => Popcnt.IsSupported,
        CpuidFeature.LZCNT => Lzcnt.IsSupported,
        CpuidFeature.BMI1 => Bmi1.IsSupported,
        CpuidFeature.BMI2 => Bmi2.IsSupported,
        CpuidFeature.CMPXCHG16B => CpuInfo.Contains("cx16"),
        _ => false,
    };

    public static bool HasAll(Code c)
    {
        // LAHF/SAHF in 64-bit mode need CPUID.80000001H:ECX.LAHF-SAHF, which Iced does not list.
        if (c is Code.Lahf or Code.Sahf && !CpuInfo.Contains("lahf_lm")) return false;
        foreach (var f in c.CpuidFeatures()) if (!Has(f)) return false;
        return true;
    }
}

/// <summary>The instruction groups of the CPU-core issue.</summary>
public static class Groups
{
    static readonly CpuidFeature[] Sse2Only = [CpuidFeature.SSE, CpuidFeature.SSE2, CpuidFeature.X64];

    static int OperandSize(in Instruction i, int op) =>
        i.GetOpKind(op) == OpKind.Register ? i.GetOpRegister(op).GetSize() : i.MemorySize.GetSize();

    /// <summary>Writes <paramref name="v"/> to operand <paramref name="op"/> (register or the memory operand).</summary>
    static bool SetOperand(CaseBuilder b, in Instruction i, int op, ulong v)
    {
        if (i.GetOpKind(op) == OpKind.Register) return b.SetReg(i.GetOpRegister(op), v);
        b.WriteMem(b.MemAddr, i.MemorySize.GetSize(), v);
        return true;
    }

    static ulong GetOperand(CaseBuilder b, in Instruction i, int op) =>
        i.GetOpKind(op) == OpKind.Register ? b.GetReg(i.GetOpRegister(op)) : b.ReadMem(b.MemAddr, i.MemorySize.GetSize());

    static Mnemonic[] Cc(string prefix)
    {
        string[] cc = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];
        var r = new Mnemonic[cc.Length];
        for (int k = 0; k < cc.Length; k++) r[k] = Enum.Parse<Mnemonic>(prefix + cc[k]);
        return r;
    }

    // SHL..RCR, SHLD/SHRD: bias counts to the interesting range; a 16-bit SHLD/SHRD count above 16 leaves the
    // destination undefined (SDM SHLD/SHRD), so it is kept at most 16.
    static bool ShiftCount(CaseBuilder b, ref Instruction i)
    {
        int last = i.OpCount - 1;
        int size = OperandSize(i, 0);
        bool dbl = i.Mnemonic is Mnemonic.Shld or Mnemonic.Shrd;
        ulong cnt;
        if (dbl && size == 2) cnt = (ulong)b.R.Next(17) + (ulong)(32 * b.R.Next(8));
        else if (b.R.Percent(60)) cnt = (ulong)b.R.Next(size * 8 + 2);
        else cnt = b.R.NextU64() & 0xFF;
        if (i.GetOpKind(last) == OpKind.Register && i.GetOpRegister(last) == Register.CL)
            return b.SetReg(Register.CL, cnt) || !(dbl && size == 2);
        if (i.GetOpKind(last) == OpKind.Immediate8 && i.Immediate8 != 1) CaseBuilder.SetImm(ref i, last, cnt);
        return true;
    }

    // DIV/IDIV: a non-zero divisor and a dividend whose quotient fits, so the host never raises #DE.
    internal static Instruction Divide(CaseBuilder b, Code code)
    {
        b.Exclude = 1 << 0 | 1 << 2; // RAX, RDX hold the dividend
        var i = b.FromCode(code);
        int size = OperandSize(i, 0), bits = size * 8;
        bool signed = i.Mnemonic == Mnemonic.Idiv;
        UInt128 mask = (UInt128.One << (2 * bits)) - 1;
        UInt128 dividend;
        ulong d;
        if (!signed)
        {
            ulong m = size == 8 ? ulong.MaxValue : (1UL << bits) - 1;
            do d = b.Value(size); while (d == 0);
            ulong q = b.Value(size) & m;
            ulong r = b.R.NextU64() % d;
            dividend = (UInt128)q * d + r;
        }
        else
        {
            long dv;
            do dv = (long)CaseBuilder.SignExtend(b.Value(size), size); while (dv == 0);
            long q = (long)CaseBuilder.SignExtend(b.Value(size), size);
            Int128 prod = (Int128)q * dv;
            long mag = (long)(b.R.NextU64() % (ulong)(dv == long.MinValue ? long.MaxValue : Math.Abs(dv)));
            Int128 r = prod > 0 ? mag : prod < 0 ? -mag : (b.R.Percent(50) ? mag : -mag);
            dividend = (UInt128)(prod + r) & mask;
            d = (ulong)dv;
        }
        if (!SetOperand(b, i, 0, d)) throw new InvalidOperationException("divisor register pinned");
        if (size == 1) b.SetReg(Register.AX, (ulong)dividend);
        else
        {
            b.SetReg(CaseBuilder.Gpr(0, size), (ulong)dividend);
            b.SetReg(CaseBuilder.Gpr(2, size), (ulong)(dividend >> bits));
        }
        return i;
    }

    static Instruction BitTest(CaseBuilder b, Code code)
    {
        var info = code.ToOpCode();
        bool regOffset = info.GetOpKind(1) is OpCodeOperandKind.r16_reg or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r64_reg;
        // BT m, r addresses memory at m + (offset >> 3) (SDM BT: bit-string addressing): keep it in the buffer.
        if (regOffset) b.Margin = 64;
        return b.FromCode(code);
    }

    static bool BitTestOffset(CaseBuilder b, ref Instruction i)
    {
        if (i.Op0Kind != OpKind.Memory || i.Op1Kind != OpKind.Register) return true;
        return b.SetReg(i.Op1Register, (ulong)b.R.Next(-256, 256));
    }

    // BSF/BSR with a zero source leave the destination undefined (SDM BSF/BSR): test it sometimes
    // (UndefinedResults masks the destination then).
    static bool BitScanSource(CaseBuilder b, ref Instruction i)
    {
        if (i.Mnemonic is not (Mnemonic.Bsf or Mnemonic.Bsr)) return true;
        int size = OperandSize(i, 1);
        ulong v = b.R.Percent(15) ? 0 : b.Value(size) | 1UL << b.R.Next(size * 8);
        return SetOperand(b, i, 1, v);
    }

    static bool LeaRandomBase(CaseBuilder b, ref Instruction i)
    {
        // LEA does not access memory: any register values work.
        if (b.R.Percent(50))
        {
            if (i.MemoryBase.IsGPR() && i.MemoryBase != Register.RSP) b.St.Gpr[CaseBuilder.Index(i.MemoryBase)] = b.Value(8);
            if (i.MemoryIndex.IsGPR() && i.MemoryIndex != Register.RSP) b.St.Gpr[CaseBuilder.Index(i.MemoryIndex)] = b.Value(8);
        }
        return true;
    }

    static Instruction PushPop(CaseBuilder b, Code code) =>
        b.R.Percent(5) ? Instruction.Create(Code.Push_r64, Register.RSP) : b.FromCode(code);

    // CMPXCHG*: make the comparison succeed half the time.
    static bool CompareEqual(CaseBuilder b, ref Instruction i)
    {
        if (!b.R.Percent(50)) return true;
        if (i.Mnemonic == Mnemonic.Cmpxchg)
        {
            int size = OperandSize(i, 0);
            b.SetReg(CaseBuilder.Gpr(0, size), GetOperand(b, i, 0));
        }
        else if (i.Mnemonic is Mnemonic.Cmpxchg8b or Mnemonic.Cmpxchg16b)
        {
            int half = i.MemorySize.GetSize() / 2;
            b.SetReg(CaseBuilder.Gpr(0, half), b.ReadMem(b.MemAddr, half));
            b.SetReg(CaseBuilder.Gpr(2, half), b.ReadMem(b.MemAddr + (ulong)half, half));
        }
        return true;
    }

    static Instruction NoAccumulatorAddress(CaseBuilder b, Code code)
    {
        b.Exclude = code is Code.Cmpxchg8b_m64 or Code.Cmpxchg16b_m128 ? 1 << 0 | 1 << 2 : 0;
        return b.FromCode(code);
    }

    static bool BextrControl(CaseBuilder b, ref Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Bextr || !b.R.Percent(60)) return true;
        return b.SetReg(i.Op2Register, (uint)b.R.Next(72) | (uint)b.R.Next(72) << 8);
    }

    // PSLL/PSRL/PSRA: counts in range most of the time (larger ones zero or sign-fill everything).
    static bool SseShiftCount(CaseBuilder b, ref Instruction i)
    {
        if (!b.R.Percent(70)) return true;
        int last = i.OpCount - 1;
        ulong cnt = (ulong)b.R.Next(i.Mnemonic is Mnemonic.Pslldq or Mnemonic.Psrldq ? 18 : 66);
        switch (i.GetOpKind(last))
        {
            case OpKind.Immediate8: CaseBuilder.SetImm(ref i, last, cnt); break;
            case OpKind.Register: b.St.Xmm[(i.GetOpRegister(last) - Register.XMM0) * 2] = cnt; break;
            case OpKind.Memory: b.WriteMem(b.MemAddr, 8, cnt); break;
        }
        return true;
    }

    // MOVS/STOS/LODS/CMPS/SCAS with and without REP, both directions, 64- and 32-bit addressing.
    static Instruction StringOp(CaseBuilder b, Code code)
    {
        int kind = b.R.Next(5), width = 1 << b.R.Next(4), asz = b.R.Percent(25) ? 32 : 64;
        bool cmp = kind >= 3;
        var rep = cmp ? b.R.Pick(new[] { RepPrefixKind.None, RepPrefixKind.Repe, RepPrefixKind.Repne })
                      : b.R.Percent(70) ? RepPrefixKind.Repe : RepPrefixKind.None;
        Instruction i = (kind, width) switch
        {
            (0, 1) => Instruction.CreateMovsb(asz, Register.None, rep), (0, 2) => Instruction.CreateMovsw(asz, Register.None, rep),
            (0, 4) => Instruction.CreateMovsd(asz, Register.None, rep), (0, _) => Instruction.CreateMovsq(asz, Register.None, rep),
            (1, 1) => Instruction.CreateStosb(asz, rep), (1, 2) => Instruction.CreateStosw(asz, rep),
            (1, 4) => Instruction.CreateStosd(asz, rep), (1, _) => Instruction.CreateStosq(asz, rep),
            (2, 1) => Instruction.CreateLodsb(asz, Register.None, rep), (2, 2) => Instruction.CreateLodsw(asz, Register.None, rep),
            (2, 4) => Instruction.CreateLodsd(asz, Register.None, rep), (2, _) => Instruction.CreateLodsq(asz, Register.None, rep),
            (3, 1) => Instruction.CreateCmpsb(asz, Register.None, rep), (3, 2) => Instruction.CreateCmpsw(asz, Register.None, rep),
            (3, 4) => Instruction.CreateCmpsd(asz, Register.None, rep), (3, _) => Instruction.CreateCmpsq(asz, Register.None, rep),
            (4, 1) => Instruction.CreateScasb(asz, rep), (4, 2) => Instruction.CreateScasw(asz, rep),
            (4, 4) => Instruction.CreateScasd(asz, rep), _ => Instruction.CreateScasq(asz, rep),
        };
        int count = rep == RepPrefixKind.None ? 0 : b.R.Next(9);
        int ra = asz / 8;
        if (rep != RepPrefixKind.None) b.SetReg(CaseBuilder.Gpr(1, ra), (ulong)count);
        // Source in one half of the buffer, destination in the other: no overlap, whatever the direction.
        bool srcLow = b.R.Percent(50);
        const int Half = NativeRunner.BufferSize / 2, Room = 80;
        ulong lo = NativeRunner.BufferAddress + Room, hi = NativeRunner.BufferAddress + Half + Room;
        ulong span = Half - 2 * Room;
        ulong src = (srcLow ? lo : hi) + (ulong)b.R.Next((int)span);
        ulong dst = (srcLow ? hi : lo) + (ulong)b.R.Next((int)span);
        bool aligned = b.R.Percent(60);
        // Longer REP counts (whole chunks for tier 1's bulk REP MOVS/STOS), and (MOVS/CMPS) overlapping ranges a few bytes
        // or elements apart, where element order decides the result (REP MOVSB replicating a pattern). Drawn only after
        // the draws above and never for a REP with count 0, so the seeds HostIndependenceTests replays keep their cases.
        if (rep == RepPrefixKind.None || count != 0)
        {
            if (rep != RepPrefixKind.None && b.R.Percent(30))
            {
                count = b.R.Next(9, 65);
                b.SetReg(CaseBuilder.Gpr(1, ra), (ulong)count);
                ulong room = 16 + (ulong)(count * width);
                src = NativeRunner.BufferAddress + (ulong)(srcLow ? 0 : Half) + room + (ulong)b.R.Next((int)(Half - 2 * room));
                dst = NativeRunner.BufferAddress + (ulong)(srcLow ? Half : 0) + room + (ulong)b.R.Next((int)(Half - 2 * room));
            }
            if (kind is 0 or 3 && b.R.Percent(30)) dst = src + (ulong)(b.R.Percent(50) ? b.R.Next(-3, 4) * width : b.R.Next(-7, 8));
        }
        if (aligned) { src &= ~(ulong)(width - 1); dst &= ~(ulong)(width - 1); }
        b.SetReg(CaseBuilder.Gpr(6, ra), src);
        b.SetReg(CaseBuilder.Gpr(7, ra), dst);
        bool down = (b.St.Rflags & 0x400) != 0;
        int n = Math.Max(count, 1);
        if (kind == 3 && b.R.Percent(60))
        {
            // Equal prefix of random length, so REPE/REPNE stop at different elements.
            int eq = b.R.Next(n + 1);
            for (int k = 0; k < eq; k++)
            {
                long o = (down ? -k : k) * (long)width;
                b.CopyMem(dst + (ulong)o, src + (ulong)o, width);
            }
        }
        if (kind == 4 && b.R.Percent(60))
        {
            long o = (down ? -1 : 1) * b.R.Next(n) * (long)width;
            b.SetReg(CaseBuilder.Gpr(0, width), b.ReadMem(dst + (ulong)o, width));
        }
        return i;
    }

    // PCMPESTRx/PCMPISTRx: strings over a small alphabet with shared elements, sometimes a zero element (the implicit
    // length), explicit lengths around the element count (EAX/EDX upper halves random unless REX.W), any imm8.
    static Instruction StringCompare(CaseBuilder b, Code code)
    {
        bool explicitLength = code.Mnemonic() is Mnemonic.Pcmpestri or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm or Mnemonic.Pcmpestrm64;
        if (explicitLength) b.Exclude = 1 << 0 | 1 << 2; // RAX, RDX hold the lengths
        var i = b.FromCode(code);
        if (code.Mnemonic() is not (Mnemonic.Pcmpestri or Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm or Mnemonic.Pcmpestrm64
            or Mnemonic.Pcmpistri or Mnemonic.Pcmpistrm)) return i;
        int imm = b.R.Next(256);
        CaseBuilder.SetImm(ref i, 2, (ulong)imm);
        bool words = (imm & 1) != 0;
        int n = words ? 8 : 16, size = words ? 2 : 1;
        var a = new byte[16];
        var s = new byte[16];
        ulong[] alphabet = [0x41, 0x42, 0x43, 0x61, 0x7F, 0x80, 0xFF, 0xFFFF, 0x8000, 0x7FFF, 0x0100];
        for (int k = 0; k < n; k++)
        {
            ulong x = b.R.Percent(75) ? b.R.Pick(alphabet) : b.R.NextU64();
            ulong y = b.R.Percent(30) ? (ulong)(size == 1 ? a[k] : BitConverter.ToUInt16(a, 2 * k)) : b.R.Percent(70) ? b.R.Pick(alphabet) : b.R.NextU64();
            if (b.R.Percent(25) && k > 0) y = size == 1 ? a[b.R.Next(k)] : BitConverter.ToUInt16(a, 2 * b.R.Next(k));
            for (int q = 0; q < size; q++) { a[k * size + q] = (byte)(x >> (8 * q)); s[k * size + q] = (byte)(y >> (8 * q)); }
        }
        // Ranges are pairs lo <= hi more often than not.
        if (((imm >> 2) & 3) == 1 && b.R.Percent(70))
            for (int k = 0; k + 1 < n; k += 2)
            {
                int lo = k * size, hi = (k + 1) * size;
                if (size == 1 ? a[lo] > a[hi] : BitConverter.ToUInt16(a, lo) > BitConverter.ToUInt16(a, hi))
                    for (int q = 0; q < size; q++) (a[lo + q], a[hi + q]) = (a[hi + q], a[lo + q]);
            }
        if (b.R.Percent(40)) for (int q = 0; q < size; q++) a[b.R.Next(n) * size + q] = 0;
        if (b.R.Percent(40)) for (int q = 0; q < size; q++) s[b.R.Next(n) * size + q] = 0;
        int ra = (i.Op0Register - Register.XMM0) * 2;
        b.St.Xmm[ra] = BitConverter.ToUInt64(a, 0);
        b.St.Xmm[ra + 1] = BitConverter.ToUInt64(a, 8);
        if (i.Op1Kind == OpKind.Register)
        {
            int rb = (i.Op1Register - Register.XMM0) * 2;
            b.St.Xmm[rb] = BitConverter.ToUInt64(s, 0);
            b.St.Xmm[rb + 1] = BitConverter.ToUInt64(s, 8);
        }
        else
        {
            b.WriteMem(b.MemAddr, 8, BitConverter.ToUInt64(s, 0));
            b.WriteMem(b.MemAddr + 8, 8, BitConverter.ToUInt64(s, 8));
        }
        if (explicitLength)
        {
            bool wide = code.Mnemonic() is Mnemonic.Pcmpestri64 or Mnemonic.Pcmpestrm64;
            foreach (var r in new[] { Register.RAX, Register.RDX })
            {
                ulong len = b.R.Percent(85) ? (ulong)(long)b.R.Next(-n - 3, n + 4) : b.Value(8);
                if (!wide) len = (b.R.NextU64() & 0xFFFF_FFFF_0000_0000) | (uint)len;
                b.SetReg(r, len);
            }
        }
        return i;
    }

    // PTEST: random operands almost never set ZF or CF; make the source a subset of, disjoint from, or equal to the
    // destination often enough.
    static bool PtestOperands(CaseBuilder b, ref Instruction i)
    {
        if (i.Mnemonic != Mnemonic.Ptest || b.R.Percent(25)) return true;
        int ra = (i.Op0Register - Register.XMM0) * 2;
        int kind = b.R.Next(3);
        Span<ulong> v = stackalloc ulong[2];
        for (int k = 0; k < 2; k++)
        {
            ulong a = b.St.Xmm[ra + k], r = b.R.Percent(20) ? 0 : b.R.NextU64();
            v[k] = kind switch { 0 => a & r, 1 => ~a & r, _ => a };
        }
        if (i.Op1Kind == OpKind.Register)
        {
            int rb = (i.Op1Register - Register.XMM0) * 2;
            if (rb == ra) return true;
            b.St.Xmm[rb] = v[0];
            b.St.Xmm[rb + 1] = v[1];
        }
        else
        {
            b.WriteMem(b.MemAddr, 8, v[0]);
            b.WriteMem(b.MemAddr + 8, 8, v[1]);
        }
        return true;
    }

    public static readonly InstructionGroup[] All =
    [
        // Straight-line sequences of 2-6 register instructions: one translated block, so the lazy flags, dead-flag
        // elimination and compare+branch fusion of tier 1 are checked across instructions, not one at a time.
        new() { Name = "FlagSequences", Weight = 12, Mnemonics = [], ExplicitCodes = [Code.Nopd] },
        new() { Name = "Alu", Weight = 14, Mnemonics = [Mnemonic.Add, Mnemonic.Adc, Mnemonic.Sub, Mnemonic.Sbb, Mnemonic.And, Mnemonic.Or, Mnemonic.Xor, Mnemonic.Cmp, Mnemonic.Test] },
        new() { Name = "IncDecNegNot", Weight = 5, Mnemonics = [Mnemonic.Inc, Mnemonic.Dec, Mnemonic.Neg, Mnemonic.Not] },
        new() { Name = "MovLeaXchg", Weight = 10, Mnemonics = [Mnemonic.Mov, Mnemonic.Movzx, Mnemonic.Movsx, Mnemonic.Movsxd, Mnemonic.Lea, Mnemonic.Xchg], Fixup = (CaseBuilder b, ref Instruction i) => i.Mnemonic != Mnemonic.Lea || LeaRandomBase(b, ref i) },
        new() { Name = "SetccCmovcc", Weight = 6, Mnemonics = [.. Cc("Set"), .. Cc("Cmov")] },
        new() { Name = "Convert", Weight = 2, Mnemonics = [Mnemonic.Cbw, Mnemonic.Cwde, Mnemonic.Cdqe, Mnemonic.Cwd, Mnemonic.Cdq, Mnemonic.Cqo] },
        new() { Name = "LahfSahf", Weight = 1, Mnemonics = [Mnemonic.Lahf, Mnemonic.Sahf] },
        new() { Name = "PushPop", Weight = 4, Mnemonics = [Mnemonic.Push, Mnemonic.Pop, Mnemonic.Pushf, Mnemonic.Pushfq], Make = PushPop },
        new() { Name = "ShiftRotate", Weight = 10, Mnemonics = [Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr, Mnemonic.Sar, Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shld, Mnemonic.Shrd], Fixup = ShiftCount },
        new() { Name = "MulDiv", Weight = 8, Mnemonics = [Mnemonic.Mul, Mnemonic.Imul, Mnemonic.Div, Mnemonic.Idiv], Make = (b, c) => c.Mnemonic() is Mnemonic.Div or Mnemonic.Idiv ? Divide(b, c) : b.FromCode(c) },
        new() { Name = "BitTest", Weight = 6, Mnemonics = [Mnemonic.Bt, Mnemonic.Bts, Mnemonic.Btr, Mnemonic.Btc], Make = BitTest, Fixup = BitTestOffset },
        new() { Name = "BitScan", Weight = 6, Mnemonics = [Mnemonic.Bsf, Mnemonic.Bsr, Mnemonic.Popcnt, Mnemonic.Lzcnt, Mnemonic.Tzcnt, Mnemonic.Bswap], Fixup = BitScanSource },
        new() { Name = "XaddCmpxchg", Weight = 5, Mnemonics = [Mnemonic.Xadd, Mnemonic.Cmpxchg, Mnemonic.Cmpxchg8b, Mnemonic.Cmpxchg16b], Make = NoAccumulatorAddress, Fixup = CompareEqual },
        new() { Name = "StringOps", Weight = 6, Mnemonics = [Mnemonic.Movsb, Mnemonic.Stosb, Mnemonic.Lodsb, Mnemonic.Cmpsb, Mnemonic.Scasb], ExplicitCodes = [Code.Movsb_m8_m8], Make = StringOp },
        new() { Name = "Bmi1", Weight = 4, Mnemonics = [Mnemonic.Andn, Mnemonic.Bextr, Mnemonic.Blsi, Mnemonic.Blsmsk, Mnemonic.Blsr], Encoding = EncodingKind.VEX, Fixup = BextrControl },
        new() { Name = "SseMove", Weight = 3, Mnemonics = [Mnemonic.Movd, Mnemonic.Movq, Mnemonic.Movdqa, Mnemonic.Movdqu, Mnemonic.Movaps, Mnemonic.Movups], OnlyFeatures = Sse2Only },
        new() { Name = "SseLogicCompare", Weight = 3, OnlyFeatures = Sse2Only, Mnemonics = [Mnemonic.Pxor, Mnemonic.Por, Mnemonic.Pand, Mnemonic.Pandn, Mnemonic.Pcmpeqb, Mnemonic.Pcmpeqw, Mnemonic.Pcmpeqd, Mnemonic.Pcmpgtb, Mnemonic.Pcmpgtw, Mnemonic.Pcmpgtd, Mnemonic.Pmovmskb] },
        new() { Name = "SseArith", Weight = 5, OnlyFeatures = Sse2Only, Mnemonics =
        [
            Mnemonic.Paddb, Mnemonic.Paddw, Mnemonic.Paddd, Mnemonic.Paddq, Mnemonic.Paddsb, Mnemonic.Paddsw, Mnemonic.Paddusb, Mnemonic.Paddusw,
            Mnemonic.Psubb, Mnemonic.Psubw, Mnemonic.Psubd, Mnemonic.Psubq, Mnemonic.Psubsb, Mnemonic.Psubsw, Mnemonic.Psubusb, Mnemonic.Psubusw,
            Mnemonic.Pminub, Mnemonic.Pmaxub, Mnemonic.Pminsw, Mnemonic.Pmaxsw, Mnemonic.Pavgb, Mnemonic.Pavgw,
            Mnemonic.Pmullw, Mnemonic.Pmulhw, Mnemonic.Pmulhuw, Mnemonic.Pmuludq, Mnemonic.Pmaddwd, Mnemonic.Psadbw,
        ] },
        new() { Name = "SseShuffle", Weight = 4, OnlyFeatures = Sse2Only, Mnemonics =
        [
            Mnemonic.Pshufd, Mnemonic.Pshuflw, Mnemonic.Pshufhw, Mnemonic.Shufps, Mnemonic.Punpcklbw, Mnemonic.Punpcklwd, Mnemonic.Punpckldq,
            Mnemonic.Punpcklqdq, Mnemonic.Punpckhbw, Mnemonic.Punpckhwd, Mnemonic.Punpckhdq, Mnemonic.Punpckhqdq, Mnemonic.Packsswb,
            Mnemonic.Packssdw, Mnemonic.Packuswb, Mnemonic.Pinsrw, Mnemonic.Pextrw,
        ] },
        new() { Name = "Ssse3", Weight = 4, OnlyFeatures = [CpuidFeature.SSSE3, CpuidFeature.X64], Mnemonics =
        [
            Mnemonic.Pshufb, Mnemonic.Phaddw, Mnemonic.Phaddd, Mnemonic.Phaddsw, Mnemonic.Phsubw, Mnemonic.Phsubd, Mnemonic.Phsubsw,
            Mnemonic.Pmaddubsw, Mnemonic.Pmulhrsw, Mnemonic.Psignb, Mnemonic.Psignw, Mnemonic.Psignd, Mnemonic.Pabsb, Mnemonic.Pabsw,
            Mnemonic.Pabsd, Mnemonic.Palignr,
        ] },
        new() { Name = "Sse3Move", Weight = 2, OnlyFeatures = [CpuidFeature.SSE3, CpuidFeature.X64], Mnemonics =
            [Mnemonic.Movddup, Mnemonic.Movshdup, Mnemonic.Movsldup, Mnemonic.Lddqu] },
        new() { Name = "Sse41Integer", Weight = 6, OnlyFeatures = [CpuidFeature.SSE4_1, CpuidFeature.X64], Mnemonics =
        [
            Mnemonic.Pminsb, Mnemonic.Pminsd, Mnemonic.Pminuw, Mnemonic.Pminud, Mnemonic.Pmaxsb, Mnemonic.Pmaxsd, Mnemonic.Pmaxuw,
            Mnemonic.Pmaxud, Mnemonic.Pmulld, Mnemonic.Pmuldq, Mnemonic.Pcmpeqq, Mnemonic.Packusdw, Mnemonic.Phminposuw,
            Mnemonic.Movntdqa, Mnemonic.Pblendw, Mnemonic.Blendps, Mnemonic.Blendpd, Mnemonic.Pblendvb, Mnemonic.Blendvps,
            Mnemonic.Blendvpd, Mnemonic.Mpsadbw, Mnemonic.Ptest,
        ], Fixup = PtestOperands },
        new() { Name = "Sse41MoveInsertExtract", Weight = 5, OnlyFeatures = [CpuidFeature.SSE4_1, CpuidFeature.X64], Mnemonics =
        [
            Mnemonic.Pmovsxbw, Mnemonic.Pmovsxbd, Mnemonic.Pmovsxbq, Mnemonic.Pmovsxwd, Mnemonic.Pmovsxwq, Mnemonic.Pmovsxdq,
            Mnemonic.Pmovzxbw, Mnemonic.Pmovzxbd, Mnemonic.Pmovzxbq, Mnemonic.Pmovzxwd, Mnemonic.Pmovzxwq, Mnemonic.Pmovzxdq,
            Mnemonic.Pextrb, Mnemonic.Pextrw, Mnemonic.Pextrd, Mnemonic.Pextrq, Mnemonic.Extractps, Mnemonic.Pinsrb,
            Mnemonic.Pinsrd, Mnemonic.Pinsrq, Mnemonic.Insertps,
        ] },
        new() { Name = "Sse42", Weight = 6, OnlyFeatures = [CpuidFeature.SSE4_2, CpuidFeature.X64], Make = StringCompare, Mnemonics =
        [
            Mnemonic.Pcmpgtq, Mnemonic.Crc32, Mnemonic.Pcmpestri, Mnemonic.Pcmpestri64, Mnemonic.Pcmpestrm, Mnemonic.Pcmpestrm64,
            Mnemonic.Pcmpistri, Mnemonic.Pcmpistrm,
        ] },
        new() { Name = "SseShift", Weight = 3, OnlyFeatures = Sse2Only, Fixup = SseShiftCount, Mnemonics =
            [Mnemonic.Psllw, Mnemonic.Pslld, Mnemonic.Psllq, Mnemonic.Psrlw, Mnemonic.Psrld, Mnemonic.Psrlq, Mnemonic.Psraw, Mnemonic.Psrad, Mnemonic.Pslldq, Mnemonic.Psrldq] },
    ];

    /// <summary>Groups whose register forms make up the random sequences of <see cref="DiffHarness.GenerateSequence"/>.</summary>
    public static readonly string[] SequenceParts = ["Alu", "IncDecNegNot", "ShiftRotate", "SetccCmovcc", "Convert", "MovLeaXchg"];

    public static InstructionGroup Get(string name) => Array.Find(All, g => g.Name == name) ?? throw new ArgumentException(name);
}
