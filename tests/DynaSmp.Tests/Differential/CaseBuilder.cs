using Iced.Intel;

namespace DynaSmp.Tests.Differential;

/// <summary>SplitMix64: a 64-bit-seedable generator, so one printed seed reproduces one case exactly.</summary>
public sealed class Rng(ulong seed)
{
    ulong _s = seed;

    public ulong NextU64()
    {
        ulong z = _s += 0x9E37_79B9_7F4A_7C15;
        z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9;
        z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => (int)(NextU64() % (ulong)n);
    public int Next(int lo, int hi) => lo + Next(hi - lo);
    public bool Percent(int p) => Next(100) < p;
    public T Pick<T>(T[] a) => a[Next(a.Length)];

    public static ulong Mix(ulong a, ulong b) => new Rng(a * 0x2545_F491_4F6C_DD1D ^ b).NextU64();
}

/// <summary>One generated case: the instruction bytes at <see cref="NativeRunner.TestRip"/> and the initial machine state.</summary>
public sealed class DiffCase
{
    public required string Group { get; init; }
    public required ulong Seed { get; init; }
    public required byte[] Code { get; init; }
    public required Instruction Insn { get; init; }
    public required MachineState Input { get; init; }
    public required byte[] Buffer { get; init; }
    public required byte[] Stack { get; init; }
    /// <summary>The GPR bits and status flags (and DF) compared: those the SDM defines for this case (<see cref="UndefinedResults"/>).</summary>
    public required CompareMask Mask { get; init; }
    public ulong Rsp => Input.Gpr[4];
}

/// <summary>
/// Builds a random initial state and fills an instruction's operands from its Iced opcode description,
/// keeping every memory operand inside the data buffer or the compared stack window.
/// </summary>
public sealed class CaseBuilder
{
    public readonly Rng R;
    public readonly MachineState St = new();
    public readonly byte[] Buf = new byte[NativeRunner.BufferSize];
    public readonly byte[] Stack = new byte[NativeRunner.StackBelow + NativeRunner.StackAbove];
    /// <summary>GPRs whose value a memory operand depends on (or a template fixed): not to be changed again.</summary>
    public int Pinned;
    public int IgnoreGpr;
    /// <summary>Linear address of the last memory operand made by <see cref="FromCode"/>.</summary>
    public ulong MemAddr;
    /// <summary>Registers a template asks <see cref="FromCode"/> to avoid (operands and address registers).</summary>
    public int Exclude;
    /// <summary>Extra bytes kept free around a memory operand (BT with a register bit offset reaches outside it).</summary>
    public int Margin;
    /// <summary>Operands for 32-bit code: EAX..EDI (AL..BH for bytes) and 32-bit addressing only.</summary>
    public bool Code32;

    public CaseBuilder(ulong seed, bool allowDf = true)
    {
        R = new Rng(seed);
        for (int k = 0; k < 16; k++) St.Gpr[k] = Value(8);
        St.Gpr[4] = NativeRunner.StackTop - 8 * (ulong)R.Next(16);
        ulong status = 0x8D5 & R.NextU64(); // CF PF AF ZF SF OF
        St.Rflags = 0x202 | status | (allowDf && R.Percent(50) ? 0x400UL : 0);
        for (int k = 0; k < 32; k++) St.Xmm[k] = XmmQword();
        for (int k = 0; k < Buf.Length; k += 8)
        {
            ulong v = R.Percent(80) ? R.NextU64() : Value(8);
            BitConverter.TryWriteBytes(Buf.AsSpan(k), v);
        }
        for (int k = 0; k < Stack.Length; k += 8) BitConverter.TryWriteBytes(Stack.AsSpan(k), R.NextU64());
    }

    public ulong Rsp => St.Gpr[4];

    static readonly ulong[] Edges =
    [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue, ulong.MaxValue - 1,
    ];

    /// <summary>A random value biased to edge cases of a <paramref name="size"/>-byte operand.</summary>
    public ulong Value(int size)
    {
        ulong v = R.Next(6) switch
        {
            0 => (ulong)R.Next(17),
            1 => (ulong)(-(long)R.Next(1, 17)),
            2 => R.Pick(Edges) + (ulong)R.Next(-2, 3),
            3 => 1UL << R.Next(size * 8),
            _ => R.NextU64(),
        };
        return size == 8 ? v : v & ((1UL << (size * 8)) - 1);
    }

    ulong XmmQword()
    {
        if (R.Percent(50)) return R.NextU64();
        ulong v = 0;
        byte[] lanes = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x81];
        for (int b = 0; b < 8; b++) v |= (ulong)(R.Percent(70) ? R.Pick(lanes) : (byte)R.NextU64()) << (b * 8);
        return v;
    }

    public static ulong SignExtend(ulong v, int size) => size switch
    {
        1 => (ulong)(sbyte)v, 2 => (ulong)(short)v, 4 => (ulong)(int)v, _ => v,
    };

    // ---- registers ----

    public static Register Gpr(int index, int size) => size switch
    {
        8 => Register.RAX + index,
        4 => Register.EAX + index,
        2 => Register.AX + index,
        _ => index < 4 ? Register.AL + index : index < 8 ? Register.SPL + (index - 4) : Register.R8L + (index - 8),
    };

    public static int Index(Register r) => r >= Register.AH && r <= Register.BH ? r - Register.AH : r.GetFullRegister() - Register.RAX;

    /// <summary>A random GPR of <paramref name="size"/> bytes, never the stack pointer, avoiding <paramref name="avoid"/>.</summary>
    public Register RandomGpr(int size, int avoid = 0)
    {
        avoid |= Exclude | 1 << 4;
        while (true)
        {
            if (size == 1 && (Code32 ? R.Percent(50) : R.Percent(20)))
            {
                int h = R.Next(4);
                if ((avoid & (1 << h)) == 0) return Register.AH + h;
                continue;
            }
            int k = Code32 ? R.Next(size == 1 ? 4 : 8) : R.Next(16);
            if ((avoid & (1 << k)) == 0) return Gpr(k, size);
        }
    }

    /// <summary>Sets the bits of <paramref name="r"/> in the initial state (other bits keep their random value)
    /// and pins the register. False when a memory operand already depends on it.</summary>
    public bool SetReg(Register r, ulong v)
    {
        int k = Index(r);
        if ((Pinned & (1 << k)) != 0) return false;
        Pinned |= 1 << k;
        Merge(r, v);
        return true;
    }

    void Merge(Register r, ulong v)
    {
        int k = Index(r);
        int size = r.GetSize(), shift = r >= Register.AH && r <= Register.BH ? 8 : 0;
        ulong mask = (size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1) << shift;
        St.Gpr[k] = (St.Gpr[k] & ~mask) | ((v << shift) & mask);
    }

    public ulong GetReg(Register r)
    {
        int k = Index(r);
        int size = r.GetSize(), shift = r >= Register.AH && r <= Register.BH ? 8 : 0;
        ulong v = St.Gpr[k] >> shift;
        return size == 8 ? v : v & ((1UL << (size * 8)) - 1);
    }

    // ---- memory ----

    Span<byte> At(ulong addr, int size)
    {
        ulong buf = NativeRunner.BufferAddress, stk = Rsp - NativeRunner.StackBelow;
        if (addr >= buf && addr + (ulong)size <= buf + (ulong)Buf.Length) return Buf.AsSpan((int)(addr - buf), size);
        if (addr >= stk && addr + (ulong)size <= stk + (ulong)Stack.Length) return Stack.AsSpan((int)(addr - stk), size);
        throw new InvalidOperationException($"0x{addr:x} is outside the compared memory");
    }

    public void WriteMem(ulong addr, int size, ulong v)
    {
        var span = At(addr, size);
        for (int k = 0; k < size; k++) span[k] = (byte)(v >> (k * 8));
    }

    public ulong ReadMem(ulong addr, int size)
    {
        var span = At(addr, size);
        ulong v = 0;
        for (int k = 0; k < size; k++) v |= (ulong)span[k] << (k * 8);
        return v;
    }

    public void CopyMem(ulong dst, ulong src, int size) => At(src, size).CopyTo(At(dst, size));

    /// <summary>A data-buffer address for a <paramref name="size"/>-byte access, aligned to <paramref name="align"/>,
    /// keeping <see cref="Margin"/> bytes free on both sides. Unaligned picks sometimes straddle the page boundary.</summary>
    public ulong BufferAddress(int size, int align)
    {
        int margin = Math.Max(Margin, 16);
        ulong start = NativeRunner.BufferAddress;
        if (align == 1 && size > 1 && R.Percent(10)) return start + 0x1000 - (ulong)R.Next(1, size);
        ulong a = start + (ulong)(margin + R.Next(NativeRunner.BufferSize - 2 * margin - size));
        return a & ~(ulong)(align - 1);
    }

    /// <summary>Picks an addressing form (base+index*scale+disp, RIP-relative, absolute, RSP-based, 32-bit
    /// address size) whose linear address is a valid <paramref name="size"/>-byte location; pins its registers.</summary>
    public (Register Base, Register Index, int Scale, long Disp, int DisplSize) Memory(int size, int align)
    {
        int roll = R.Next(20);
        if (Code32 && roll < 5) roll = 2; // no RIP-relative or 64-bit RSP forms: absolute instead
        if (roll < 2) { MemAddr = BufferAddress(size, align); return (Register.RIP, Register.None, 1, (long)MemAddr, 8); }
        if (roll < 3) { MemAddr = BufferAddress(size, align); return (Register.None, Register.None, 1, (long)MemAddr, 4); }
        if (roll < 5 && Margin == 0)
        {
            // [rsp + disp] (optionally + index) into the compared stack window.
            long lo = -NativeRunner.StackBelow, hi = NativeRunner.StackAbove - size - 16; // POP m adds 8 first
            // Align the address, not the offset: RSP itself is only 8-byte aligned.
            ulong at = (Rsp + (ulong)(lo + R.Next((int)(hi - lo + 1)))) & ~(ulong)(align - 1);
            if (at < Rsp - (ulong)(-lo)) at += (ulong)align;
            long off = (long)(at - Rsp);
            MemAddr = at;
            Register idx = Register.None; int sc = 1; long iv = 0;
            if (R.Percent(40))
            {
                idx = RandomGpr(8, Pinned);
                sc = 1 << R.Next(4);
                iv = R.Next(-4, 5);
                Merge(idx, (ulong)iv); Pinned |= 1 << Index(idx);
            }
            return (Register.RSP, idx, sc, off - iv * sc, 1);
        }
        MemAddr = BufferAddress(size, align);
        bool a32 = Code32 || R.Percent(15);
        int asz = a32 ? 4 : 8;
        Register b = R.Percent(8) ? Register.None : RandomGpr(asz, Pinned);
        Register x = Register.None;
        if (b == Register.None || R.Percent(50)) x = RandomGpr(asz, Pinned | (b == Register.None ? 0 : 1 << Index(b)));
        int scale = x == Register.None ? 1 : 1 << R.Next(4);
        int dsz = b == Register.None ? 4 : R.Pick(new[] { 0, 1, 4 });
        long disp = dsz switch { 0 => 0, 1 => R.Next(-128, 128), _ => R.Next(-0x100000, 0x100000) };
        long xv = x == Register.None ? 0 : R.Percent(50) ? R.Next(-64, 65) : R.Next(-0x10000, 0x10000);
        ulong bv = MemAddr - (ulong)disp - (ulong)(xv * scale);
        if (b == Register.None)
        {
            // No base: the displacement carries the address.
            disp = (long)(MemAddr - (ulong)(xv * scale));
            if (disp != (int)disp) { disp = (long)MemAddr; x = Register.None; scale = 1; }
        }
        else SetAddrReg(b, bv, a32);
        if (x != Register.None) SetAddrReg(x, (ulong)xv, a32);
        return (b, x, scale, disp, dsz);
    }

    void SetAddrReg(Register r, ulong v, bool a32)
    {
        int k = Index(r);
        // With a 32-bit address size the upper half is ignored: leave it random.
        St.Gpr[k] = a32 ? (St.Gpr[k] & 0xFFFF_FFFF_0000_0000) | (uint)v : v;
        Pinned |= 1 << k;
    }

    // ---- operands from the opcode description ----

    static int RegSize(OpCodeOperandKind k) => k switch
    {
        OpCodeOperandKind.r8_reg or OpCodeOperandKind.r8_opcode or OpCodeOperandKind.r8_or_mem => 1,
        OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_opcode or OpCodeOperandKind.r16_rm or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r16_reg_mem => 2,
        OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_opcode or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r32_reg_mem or OpCodeOperandKind.r32_vvvv => 4,
        OpCodeOperandKind.r64_reg or OpCodeOperandKind.r64_opcode or OpCodeOperandKind.r64_rm or OpCodeOperandKind.r64_or_mem or OpCodeOperandKind.r64_reg_mem or OpCodeOperandKind.r64_vvvv => 8,
        _ => 0,
    };

    public static bool Supported(OpCodeOperandKind k) => RegSize(k) != 0 || k switch
    {
        OpCodeOperandKind.mem or OpCodeOperandKind.mem_offs or OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm
            or OpCodeOperandKind.xmm_or_mem or OpCodeOperandKind.al or OpCodeOperandKind.cl or OpCodeOperandKind.ax
            or OpCodeOperandKind.eax or OpCodeOperandKind.rax or OpCodeOperandKind.imm8 or OpCodeOperandKind.imm8_const_1
            or OpCodeOperandKind.imm8sex16 or OpCodeOperandKind.imm8sex32 or OpCodeOperandKind.imm8sex64
            or OpCodeOperandKind.imm16 or OpCodeOperandKind.imm32 or OpCodeOperandKind.imm32sex64 or OpCodeOperandKind.imm64 => true,
        _ => false,
    };

    // Legacy SSE m128 operands that need no alignment: the unaligned moves, LDDQU and the SSE4.2 string compares (SDM).
    static readonly Mnemonic[] UnalignedSse = [Mnemonic.Movdqu, Mnemonic.Movups, Mnemonic.Lddqu, Mnemonic.Pcmpestri, Mnemonic.Pcmpestri64,
        Mnemonic.Pcmpestrm, Mnemonic.Pcmpestrm64, Mnemonic.Pcmpistri, Mnemonic.Pcmpistrm];

    /// <summary>An instruction of <paramref name="code"/> with random operands (register or memory for r/m).
    /// <paramref name="forceMem"/>: 1 = r/m operands are memory, -1 = registers, 0 = either.</summary>
    public Instruction FromCode(Code code, int forceMem = 0)
    {
        var info = code.ToOpCode();
        var insn = default(Instruction);
        insn.Code = code;
        bool hasMem = false;
        int memOp = -1;
        for (int n = 0; n < info.OpCount; n++)
        {
            var k = info.GetOpKind(n);
            int rs = RegSize(k);
            bool mem = k is OpCodeOperandKind.mem or OpCodeOperandKind.mem_offs
                || ((k is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem
                    or OpCodeOperandKind.r64_or_mem or OpCodeOperandKind.r16_reg_mem or OpCodeOperandKind.r32_reg_mem
                    or OpCodeOperandKind.r64_reg_mem or OpCodeOperandKind.xmm_or_mem) && (forceMem > 0 || (forceMem == 0 && R.Percent(45))));
            if (mem)
            {
                insn.SetOpKind(n, OpKind.Memory);
                hasMem = true; memOp = n;
                continue;
            }
            if (rs != 0) { insn.SetOpKind(n, OpKind.Register); insn.SetOpRegister(n, RandomGpr(rs)); continue; }
            switch (k)
            {
                case OpCodeOperandKind.xmm_reg: case OpCodeOperandKind.xmm_rm: case OpCodeOperandKind.xmm_or_mem:
                    insn.SetOpKind(n, OpKind.Register); insn.SetOpRegister(n, Register.XMM0 + R.Next(16)); break;
                case OpCodeOperandKind.al: Fixed(ref insn, n, Register.AL); break;
                case OpCodeOperandKind.cl: Fixed(ref insn, n, Register.CL); break;
                case OpCodeOperandKind.ax: Fixed(ref insn, n, Register.AX); break;
                case OpCodeOperandKind.eax: Fixed(ref insn, n, Register.EAX); break;
                case OpCodeOperandKind.rax: Fixed(ref insn, n, Register.RAX); break;
                case OpCodeOperandKind.imm8: Imm(ref insn, n, OpKind.Immediate8, Value(1)); break;
                case OpCodeOperandKind.imm8_const_1: Imm(ref insn, n, OpKind.Immediate8, 1); break;
                case OpCodeOperandKind.imm8sex16: Imm(ref insn, n, OpKind.Immediate8to16, Value(1)); break;
                case OpCodeOperandKind.imm8sex32: Imm(ref insn, n, OpKind.Immediate8to32, Value(1)); break;
                case OpCodeOperandKind.imm8sex64: Imm(ref insn, n, OpKind.Immediate8to64, Value(1)); break;
                case OpCodeOperandKind.imm16: Imm(ref insn, n, OpKind.Immediate16, Value(2)); break;
                case OpCodeOperandKind.imm32: Imm(ref insn, n, OpKind.Immediate32, Value(4)); break;
                case OpCodeOperandKind.imm32sex64: Imm(ref insn, n, OpKind.Immediate32to64, Value(4)); break;
                case OpCodeOperandKind.imm64: Imm(ref insn, n, OpKind.Immediate64, Value(8)); break;
                default: throw new InvalidOperationException($"{code}: operand kind {k}");
            }
        }
        if (hasMem)
        {
            int size = insn.MemorySize.GetSize();
            if (size == 0) size = 16;
            bool locked = info.CanUseLockPrefix && memOp == 0 && R.Percent(30);
            var m = insn.Mnemonic;
            bool atomic = locked || m is Mnemonic.Xchg or Mnemonic.Xadd or Mnemonic.Cmpxchg or Mnemonic.Cmpxchg8b or Mnemonic.Cmpxchg16b;
            // Legacy SSE 16-byte operands must be aligned (#GP otherwise); locked operands are kept within one
            // cache line (a split lock is slow and may be fatal on hosts with split-lock detection).
            int align = atomic ? size : size == 16 && Array.IndexOf(UnalignedSse, m) < 0 ? 16 : R.Percent(70) ? Math.Min(size, 8) : 1;
            if (info.GetOpKind(memOp) == OpCodeOperandKind.mem_offs)
            {
                MemAddr = BufferAddress(size, align);
                insn.MemoryBase = Register.None; insn.MemoryIndex = Register.None; insn.MemoryIndexScale = 1;
                insn.MemoryDisplacement64 = MemAddr; insn.MemoryDisplSize = Code32 ? 4 : 8;
            }
            else
            {
                var (b, x, sc, d, ds) = Memory(size, align);
                insn.MemoryBase = b; insn.MemoryIndex = x; insn.MemoryIndexScale = sc;
                insn.MemoryDisplacement64 = (ulong)d; insn.MemoryDisplSize = ds;
            }
            if (size <= 8 && R.Percent(40)) WriteMem(MemAddr, size, Value(size));
            if (locked) insn.HasLockPrefix = true;
        }
        return insn;
    }

    static void Fixed(ref Instruction insn, int n, Register r)
    {
        insn.SetOpKind(n, OpKind.Register);
        insn.SetOpRegister(n, r);
    }

    static void Imm(ref Instruction insn, int n, OpKind kind, ulong v)
    {
        insn.SetOpKind(n, kind);
        insn.SetImmediate(n, v);
    }

    /// <summary>Replaces the immediate of operand <paramref name="n"/>.</summary>
    public static void SetImm(ref Instruction insn, int n, ulong v) => insn.SetImmediate(n, v);
}
