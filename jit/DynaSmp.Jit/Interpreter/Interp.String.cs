using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>String instructions MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS with REP/REPE/REPNE
/// (SDM Vol. 2A "MOVS", "CMPS", ..., and Vol. 2B "REP/REPE/REPZ/REPNE/REPNZ").</summary>
/// <remarks>
/// RSI/RDI/RCX are used at the address size (Iced's MemorySegSI/ESI/RSI and MemoryESDI/EDI/RDI operand kinds).
/// The source segment can be overridden; the destination is always ES. Each iteration commits RSI/RDI/RCX and
/// the flags before the next starts, so a fault in iteration n leaves the state after iteration n-1 and the
/// caller puts RIP back on the instruction: the SDM's "interrupted REP" state, from which it resumes.
/// </remarks>
public static unsafe partial class Interp
{
    /// <summary>A REP loop looks at CpuState.ExitRequest once per this many iterations.</summary>
    const int StringPollInterval = 4096;

    enum StringKind { Movs, Cmps, Scas, Lods, Stos, Ins, Outs }

    static bool TryExecuteString(CpuCore c, in Instruction i)
    {
        StringKind kind;
        int size;
        switch (i.Mnemonic)
        {
            case Mnemonic.Movsb: kind = StringKind.Movs; size = 1; break;
            case Mnemonic.Movsw: kind = StringKind.Movs; size = 2; break;
            case Mnemonic.Movsd: kind = StringKind.Movs; size = 4; break; // also the SSE MOVSD: checked below
            case Mnemonic.Movsq: kind = StringKind.Movs; size = 8; break;
            case Mnemonic.Cmpsb: kind = StringKind.Cmps; size = 1; break;
            case Mnemonic.Cmpsw: kind = StringKind.Cmps; size = 2; break;
            case Mnemonic.Cmpsd: kind = StringKind.Cmps; size = 4; break; // also the SSE CMPSD: checked below
            case Mnemonic.Cmpsq: kind = StringKind.Cmps; size = 8; break;
            case Mnemonic.Scasb: kind = StringKind.Scas; size = 1; break;
            case Mnemonic.Scasw: kind = StringKind.Scas; size = 2; break;
            case Mnemonic.Scasd: kind = StringKind.Scas; size = 4; break;
            case Mnemonic.Scasq: kind = StringKind.Scas; size = 8; break;
            case Mnemonic.Lodsb: kind = StringKind.Lods; size = 1; break;
            case Mnemonic.Lodsw: kind = StringKind.Lods; size = 2; break;
            case Mnemonic.Lodsd: kind = StringKind.Lods; size = 4; break;
            case Mnemonic.Lodsq: kind = StringKind.Lods; size = 8; break;
            case Mnemonic.Stosb: kind = StringKind.Stos; size = 1; break;
            case Mnemonic.Stosw: kind = StringKind.Stos; size = 2; break;
            case Mnemonic.Stosd: kind = StringKind.Stos; size = 4; break;
            case Mnemonic.Stosq: kind = StringKind.Stos; size = 8; break;
            case Mnemonic.Insb: kind = StringKind.Ins; size = 1; break;
            case Mnemonic.Insw: kind = StringKind.Ins; size = 2; break;
            case Mnemonic.Insd: kind = StringKind.Ins; size = 4; break;
            case Mnemonic.Outsb: kind = StringKind.Outs; size = 1; break;
            case Mnemonic.Outsw: kind = StringKind.Outs; size = 2; break;
            case Mnemonic.Outsd: kind = StringKind.Outs; size = 4; break;
            default: return false;
        }
        int asz = StringAddressSize(i);
        if (asz == 0) return false; // MOVSD/CMPSD with XMM operands belong to the SSE group
        ExecuteString(c, i, kind, size, asz);
        return true;
    }

    /// <summary>Address size of a string instruction from its implicit memory operand, or 0 if it has none.</summary>
    internal static int StringAddressSize(in Instruction i)
    {
        for (int op = 0; op < i.OpCount; op++)
        {
            switch (i.GetOpKind(op))
            {
                case OpKind.MemorySegSI: case OpKind.MemoryESDI: return 2;
                case OpKind.MemorySegESI: case OpKind.MemoryESEDI: return 4;
                case OpKind.MemorySegRSI: case OpKind.MemoryESRDI: return 8;
            }
        }
        return 0;
    }

    static Register StringAccumulator(int size) =>
        size switch { 1 => Register.AL, 2 => Register.AX, 4 => Register.EAX, _ => Register.RAX };

    static void ExecuteString(CpuCore c, in Instruction i, StringKind kind, int size, int asz)
    {
        CpuState* s = c.State;
        if (i.HasLockPrefix) throw CpuFault.UD();
        ulong amask = Flags.SizeMask(asz);
        Register rsi = asz == 2 ? Register.SI : asz == 4 ? Register.ESI : Register.RSI;
        Register rdi = asz == 2 ? Register.DI : asz == 4 ? Register.EDI : Register.RDI;
        Register rcx = asz == 2 ? Register.CX : asz == 4 ? Register.ECX : Register.RCX;
        Register srcSeg = i.MemorySegment;
        ulong step = (s->Rflags & RFlags.DF) != 0 ? (ulong)(-size) : (ulong)size;
        bool rep = i.HasRepePrefix || i.HasRepnePrefix;
        // CMPS/SCAS: F3 repeats while equal (REPE), F2 while not equal (REPNE). The other string
        // instructions treat either prefix as REP.
        bool compares = kind is StringKind.Cmps or StringKind.Scas;
        bool stopWhenEqual = i.HasRepnePrefix;
        ushort port = (ushort)s->Gpr[2];
        if (kind is StringKind.Ins or StringKind.Outs) c.CheckIoPermission(port, size);
        ulong acc = s->Gpr[0] & Flags.SizeMask(size);

        if (asz == 4 && (s->Mode & ExecMode.SizeMask) == ExecMode.Code64)
        {
            // 32-bit address size in 64-bit mode: REP writes ECX (zero-extending RCX) even when the count is 0;
            // MOVS/STOS (the fast-string forms) also zero-extend RSI/RDI then, CMPS/SCAS/LODS do not
            // (host-checked; the SDM leaves it unspecified). Any iteration writes them anyway.
            if (rep) s->Gpr[1] = (uint)s->Gpr[1];
            if (kind == StringKind.Movs) s->Gpr[6] = (uint)s->Gpr[6];
            if (kind is StringKind.Movs or StringKind.Stos) s->Gpr[7] = (uint)s->Gpr[7];
        }
        bool bulk = rep && step == (ulong)size && kind is StringKind.Stos or StringKind.Movs;
        for (int n = 1; ; n++)
        {
            if (rep && (s->Gpr[1] & amask) == 0) return;
            // PERF: forward REP STOS/MOVS over RAM move a page-bounded chunk at a time (memset/memcpy);
            // element-by-element only where a chunk would cross a page, hit MMIO, or overlap.
            if (bulk && TryStringChunk(c, kind, size, amask, srcSeg, rsi, rdi, rcx, acc))
            {
                if (n % 64 == 0 && Volatile.Read(ref s->ExitRequest) != 0 && (s->Gpr[1] & amask) != 0)
                {
                    StringInterrupt(s, i);
                    return;
                }
                continue;
            }
            ulong si = s->Gpr[6] & amask, di = s->Gpr[7] & amask;
            switch (kind)
            {
                case StringKind.Movs:
                {
                    ulong v = Mem.Read(c, CheckedLinear(s, srcSeg, si, size, write: false), size);
                    Mem.Write(c, CheckedLinear(s, Register.ES, di, size, write: true), size, v);
                    WriteReg(s, rsi, si + step);
                    WriteReg(s, rdi, di + step);
                    break;
                }
                case StringKind.Cmps:
                {
                    ulong a = Mem.Read(c, CheckedLinear(s, srcSeg, si, size, write: false), size);
                    ulong b = Mem.Read(c, CheckedLinear(s, Register.ES, di, size, write: false), size);
                    Flags.SetLazy(s, FlagOp.Sub, size, (a - b) & Flags.SizeMask(size), a, b);
                    WriteReg(s, rsi, si + step);
                    WriteReg(s, rdi, di + step);
                    break;
                }
                case StringKind.Scas:
                {
                    ulong b = Mem.Read(c, CheckedLinear(s, Register.ES, di, size, write: false), size);
                    Flags.SetLazy(s, FlagOp.Sub, size, (acc - b) & Flags.SizeMask(size), acc, b);
                    WriteReg(s, rdi, di + step);
                    break;
                }
                case StringKind.Lods:
                    WriteReg(s, StringAccumulator(size), Mem.Read(c, CheckedLinear(s, srcSeg, si, size, write: false), size));
                    WriteReg(s, rsi, si + step);
                    break;
                case StringKind.Stos:
                    Mem.Write(c, CheckedLinear(s, Register.ES, di, size, write: true), size, acc);
                    WriteReg(s, rdi, di + step);
                    break;
                case StringKind.Ins:
                {
                    ulong lin = CheckedLinear(s, Register.ES, di, size, write: true);
                    // Check the destination before reading the port, so a fault does not consume device data.
                    Mem.HostPointer(c, lin, size, MemAccess.Write);
                    Mem.Write(c, lin, size, c.Bus.PortIn(port, size));
                    WriteReg(s, rdi, di + step);
                    break;
                }
                default: // Outs
                    c.Bus.PortOut(port, size, (uint)Mem.Read(c, CheckedLinear(s, srcSeg, si, size, write: false), size));
                    WriteReg(s, rsi, si + step);
                    break;
            }
            if (!rep) return;
            ulong left = (s->Gpr[1] - 1) & amask;
            WriteReg(s, rcx, left);
            if (left == 0) return;
            if (compares && Flags.Condition(s, 4) == stopWhenEqual) return; // cc 4 = ZF set
            if (n % StringPollInterval == 0 && Volatile.Read(ref s->ExitRequest) != 0)
            {
                StringInterrupt(s, i);
                return;
            }
        }
    }

    /// <summary>Does up to a page of a forward REP STOS/MOVS with host memory operations. Returns false
    /// (nothing done) when fewer than two elements fit, the memory is not RAM, or MOVS operands overlap.</summary>
    static bool TryStringChunk(CpuCore c, StringKind kind, int size, ulong amask, Register srcSeg,
        Register rsi, Register rdi, Register rcx, ulong acc)
    {
        CpuState* s = c.State;
        ulong count = s->Gpr[1] & amask;
        ulong di = s->Gpr[7] & amask, si = s->Gpr[6] & amask;
        ulong dlin = Linear(s, Register.ES, di);
        ulong n = Math.Min(count, (GuestRam.PageSize - (dlin & GuestRam.PageMask)) / (ulong)size);
        n = Math.Min(n, ((amask - di) + 1) / (ulong)size); // the index register must not wrap inside a chunk
        ulong slin = 0;
        if (kind == StringKind.Movs)
        {
            slin = Linear(s, srcSeg, si);
            n = Math.Min(n, (GuestRam.PageSize - (slin & GuestRam.PageMask)) / (ulong)size);
            n = Math.Min(n, ((amask - si) + 1) / (ulong)size);
        }
        if (n < 2) return false;
        int bytes = (int)n * size;
        // Protected mode: a chunk reaching past a segment limit goes element by element, so the fault comes
        // at the first element outside with the earlier ones done (SDM Vol. 3A 5.3).
        if (SegmentChecks(s) && (SegmentAccessFault(s, Register.ES, di, bytes, write: true) >= 0
            || (kind == StringKind.Movs && SegmentAccessFault(s, srcSeg, si, bytes, write: false) >= 0)))
            return false;
        byte* src = null;
        if (kind == StringKind.Movs)
        {
            src = Mem.HostPointer(c, slin, bytes, MemAccess.Read);
            if (src == null) return false;
        }
        byte* dst = Mem.HostPointer(c, dlin, bytes, MemAccess.Write);
        if (dst == null) return false;
        if (kind == StringKind.Movs)
        {
            // Element order matters when the ranges overlap (REP MOVSB replicates a pattern): not a memmove.
            if (dst < src + bytes && src < dst + bytes) return false;
            Buffer.MemoryCopy(src, dst, bytes, bytes);
            WriteReg(s, rsi, si + (ulong)bytes);
        }
        else
        {
            StoreElements(dst, (int)n, size, acc);
        }
        WriteReg(s, rdi, di + (ulong)bytes);
        WriteReg(s, rcx, (count - n) & amask);
        return true;
    }

    /// <summary>Leaves a REP loop early so its vCPU can answer an exit request: RIP goes back to the
    /// instruction, which resumes with the updated RCX/RSI/RDI when re-executed (SDM "REP": a repeat
    /// string operation can be interrupted between iterations).</summary>
    static void StringInterrupt(CpuState* s, in Instruction i)
    {
        ulong ip = s->Rip - (ulong)i.Length;
        ExecMode width = s->Mode & ExecMode.SizeMask;
        if (width == ExecMode.Code32) ip &= 0xFFFF_FFFF;
        else if (width == ExecMode.Code16) ip &= 0xFFFF;
        s->Rip = ip;
        // Both tiers leave the block after it, so the dispatcher re-executes it from the restored RIP.
        Interlocked.Or(ref s->ExitRequest, ExitRequestBits.LeaveBlock);
    }

    /// <summary>REP STOS's stores of <paramref name="n"/> elements of <paramref name="size"/> bytes, for tier 0 and tier 1.
    /// An element whose bytes are all equal (zero: clear_page and memset(0)) is a memset, CoreLib's precompiled vectorised
    /// path; the rest fill element by element.</summary>
    /// <remarks>PERF: Span.Fill of ulong is a generic instantiation CoreLib does not precompile; a Debian boot spent 1.4% of
    /// its vCPU threads' samples in its tier-0 code, zeroing pages.</remarks>
    internal static void StoreElements(byte* dst, int n, int size, ulong value)
    {
        ulong mask = Flags.SizeMask(size);
        if ((value & mask) == ((value & 0xFF) * 0x0101_0101_0101_0101UL & mask))
        {
            Unsafe.InitBlockUnaligned(dst, (byte)value, (uint)(n * size));
            return;
        }
        switch (size)
        {
            case 2: new Span<ushort>(dst, n).Fill((ushort)value); break;
            case 4: new Span<uint>(dst, n).Fill((uint)value); break;
            default: new Span<ulong>(dst, n).Fill(value); break;
        }
    }
}
