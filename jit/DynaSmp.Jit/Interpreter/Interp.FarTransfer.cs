using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Far JMP, far CALL, far RET and IRET in real, protected and IA-32e mode, with call gates and
/// privilege-changing stack switches (SDM Vol. 3A 5.8, 6.12; JMP, CALL, RET and IRET instruction pages).</summary>
public static unsafe partial class Interp
{
    static bool TryExecuteFarTransfer(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Jmp when IsFarBranch(i): FarJmpOrCall(c, i, call: false); return true;
            case Mnemonic.Retf: FarRet(c, i); return true;
            case Mnemonic.Iret: case Mnemonic.Iretd: case Mnemonic.Iretq: Iret(c, i); return true;
        }
        return false;
    }

    /// <summary>A stack walked by a multi-slot push or pop before anything is committed. Outside real,
    /// virtual-8086 and 64-bit mode each slot is limit-checked (SDM Vol. 3A 5.3): #SS(0) on the current stack,
    /// #SS(selector) on the inner stack of a stack switch (CALL instruction page).</summary>
    struct StackCursor
    {
        public ulong Base, Sp;
        public int AddrSize;
        public bool Flat;
        /// <summary>An inner-privilege stack written before CPL changes: implicit supervisor accesses.</summary>
        public bool Supervisor;
        /// <summary>Slots are checked against <see cref="Segment"/>; a violation is #SS(<see cref="Error"/>).</summary>
        public bool Checked;
        public SegmentCache Segment;
        public ulong Error;

        public readonly ulong Linear => Flat ? Sp : (uint)(Base + Sp);

        public static StackCursor Current(CpuState* s)
        {
            var k = For(s->Ss, s->Gpr[4], StackAddrSize(s), Is64BitMode(s));
            k.Checked = SegmentChecks(s);
            return k;
        }

        public static StackCursor For(in SegmentCache ss, ulong sp, int addrSize, bool flat)
        {
            var k = new StackCursor { Base = ss.Base, AddrSize = addrSize, Flat = flat, Segment = ss };
            k.Sp = Wrap(sp, addrSize);
            return k;
        }

        public static ulong Wrap(ulong sp, int addrSize) => addrSize == 2 ? sp & 0xFFFF : addrSize == 4 ? sp & 0xFFFF_FFFF : sp;

        readonly void Check(ulong offset, int size)
        {
            if (Checked && !WithinLimit(Segment, offset, size)) throw new CpuFault(Vector.SS, Error);
        }

        public void Push(CpuCore c, int size, ulong v)
        {
            Sp = Wrap(Sp - (ulong)size, AddrSize);
            Check(Sp, size);
            if (Supervisor) { using var scope = c.Mmu.Supervisor(); Mem.Write(c, Linear, size, v); }
            else Mem.Write(c, Linear, size, v);
        }

        public ulong Pop(CpuCore c, int size)
        {
            Check(Sp, size);
            ulong v = Mem.Read(c, Linear, size);
            Sp = Wrap(Sp + (ulong)size, AddrSize);
            return v;
        }

        public readonly ulong Peek(CpuCore c, int size, ulong offset)
        {
            ulong at = Flat ? Sp + offset : Wrap(Sp + offset, AddrSize);
            Check(at, size);
            return Mem.Read(c, Flat ? at : (uint)(Base + at), size);
        }

        public void Skip(ulong bytes) => Sp = Wrap(Sp + bytes, AddrSize);
    }

    static int FarOperandSize(in Instruction i) => i.Op0Kind switch
    {
        OpKind.FarBranch16 => 2,
        OpKind.FarBranch32 => 4,
        _ => i.MemorySize switch { MemorySize.SegPtr16 => 2, MemorySize.SegPtr32 => 4, _ => 8 },
    };

    static bool IsFarBranch(in Instruction i) =>
        i.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32 || (i.Op0Kind == OpKind.Memory && MnemonicClass.IsFarPointer(i.MemorySize));

    /// <summary>Target selector and offset of a far JMP/CALL: the pointer operand, or m16:16/32/64 with the offset first.</summary>
    static void FarTarget(CpuCore c, in Instruction i, int size, out ushort sel, out ulong offset)
    {
        if (i.Op0Kind is OpKind.FarBranch16 or OpKind.FarBranch32)
        {
            sel = i.FarBranchSelector;
            offset = i.Op0Kind == OpKind.FarBranch16 ? i.FarBranch16 : i.FarBranch32;
            return;
        }
        ulong lin = MemAddress(c.State, i);
        offset = Mem.Read(c, lin, size);
        sel = Mem.Read16(c, lin + (ulong)size);
    }

    static ulong MaskOffset(ulong offset, int size) => size == 2 ? offset & 0xFFFF : size == 4 ? offset & 0xFFFF_FFFF : offset;

    /// <summary>A new CS:RIP must lie within the code-segment limit, or be canonical when it is a 64-bit segment (#GP(0)).</summary>
    static void CheckCodeOffset(in Descriptor code, bool target64, ulong offset)
    {
        if (target64 ? !IsCanonical(offset) : offset > code.Limit) throw CpuFault.GP();
    }

    static void CommitCs(CpuCore c, ulong lin, in Descriptor d, ushort selector, ulong rip)
    {
        CpuState* s = c.State;
        SetAccessed(c, lin, d);
        s->Cs = new Descriptor(d.Raw | (1UL << 40)).ToCache(selector);
        s->Rip = rip;
        c.OnPrivilegeOrModeChange();
    }

    /// <summary>Far JMP or CALL (SDM JMP and CALL instruction pages).</summary>
    internal static void FarJmpOrCall(CpuCore c, in Instruction i, bool call)
    {
        CpuState* s = c.State;
        int size = FarOperandSize(i);
        FarTarget(c, i, size, out ushort sel, out ulong offset);
        offset = MaskOffset(offset, size);
        if (!IsProtected(s))
        {
            if ((s->Rflags & RFlags.VM) != 0) throw new UnsupportedGuestFeatureException("virtual-8086 mode");
            if (call)
            {
                var k = StackCursor.Current(s);
                k.Push(c, size, s->Cs.Selector);
                k.Push(c, size, s->Rip);
                SetStackPointer(s, k.AddrSize, k.Sp);
            }
            s->Cs.LoadRealMode(sel);
            s->Rip = offset;
            c.OnPrivilegeOrModeChange();
            return;
        }

        bool lma = IsLongModeActive(s);
        ulong err = sel & ~3UL;
        int cpl = s->Cpl;
        if ((sel & ~3) == 0) throw CpuFault.GP();
        var d = FetchDescriptor(c, sel, out ulong lin);
        if (d.IsCode)
        {
            // CONFORMING-/NONCONFORMING-CODE-SEGMENT: no privilege change, RPL of CS becomes CPL.
            if (lma && d.Long && d.DefaultBig) throw CpuFault.GP(err);
            if (d.IsConforming ? d.Dpl > cpl : (sel & 3) > cpl || d.Dpl != cpl) throw CpuFault.GP(err);
            if (!d.Present) throw new CpuFault(Vector.NP, err);
            bool target64 = lma && d.Long;
            CheckCodeOffset(d, target64, offset);
            if (call)
            {
                var k = StackCursor.Current(s);
                k.Push(c, size, s->Cs.Selector);
                k.Push(c, size, s->Rip);
                SetStackPointer(s, k.AddrSize, k.Sp);
            }
            CommitCs(c, lin, d, (ushort)((sel & ~3) | cpl), offset);
            return;
        }
        if (d.IsCodeOrData) throw CpuFault.GP(err);
        switch (d.Type)
        {
            case 0x4 when !lma: case 0xC:
                CallGate(c, sel, d, call);
                return;
            case 0x5: case 0x1: case 0x9:
                if (!lma) throw new UnsupportedGuestFeatureException("hardware task switching (far " + (call ? "CALL" : "JMP") + " to a task gate or TSS)");
                throw CpuFault.GP(err);
            default:
                throw CpuFault.GP(err);
        }
    }

    /// <summary>Far JMP/CALL through a call gate (SDM 5.8.4-5.8.6; CALL-GATE in the CALL and JMP pages).</summary>
    static void CallGate(CpuCore c, ushort gateSel, in Descriptor gate, bool call)
    {
        CpuState* s = c.State;
        bool lma = IsLongModeActive(s);
        int cpl = s->Cpl;
        ulong gateErr = gateSel & ~3UL;
        ulong gateHigh = lma ? FetchUpperHalf(c, gateSel) : 0;
        if (gate.Dpl < cpl || gate.Dpl < (gateSel & 3)) throw CpuFault.GP(gateErr);
        if (!gate.Present) throw new CpuFault(Vector.NP, gateErr);
        ushort sel = gate.GateSelector;
        ulong err = sel & ~3UL;
        if ((sel & ~3) == 0) throw CpuFault.GP();
        var code = FetchDescriptor(c, sel, out ulong codeLin);
        if (!code.IsCode) throw CpuFault.GP(err);
        if (call ? code.Dpl > cpl : code.IsConforming ? code.Dpl > cpl : code.Dpl != cpl) throw CpuFault.GP(err);
        if (lma && (!code.Long || code.DefaultBig)) throw CpuFault.GP(err);
        if (!code.Present) throw new CpuFault(Vector.NP, err);

        int gateSize = lma ? 8 : gate.Type == 0xC ? 4 : 2;
        ulong offset = gateSize == 8 ? gate.GateOffset32 | (gateHigh & 0xFFFF_FFFF) << 32 : gateSize == 4 ? gate.GateOffset32 : gate.GateOffset32 & 0xFFFF;
        CheckCodeOffset(code, lma, offset);

        bool morePrivilege = call && !code.IsConforming && code.Dpl < cpl;
        if (!morePrivilege)
        {
            if (call)
            {
                var k = StackCursor.Current(s);
                k.Push(c, gateSize, s->Cs.Selector);
                k.Push(c, gateSize, s->Rip);
                SetStackPointer(s, k.AddrSize, k.Sp);
            }
            CommitCs(c, codeLin, code, (ushort)((sel & ~3) | cpl), offset);
            return;
        }

        // MORE-PRIVILEGE: the inner stack comes from the TSS (SDM 5.8.5, Figure 5-13).
        int newCpl = code.Dpl;
        SegmentCache newSs;
        ulong newSp;
        ulong ssLin = 0;
        Descriptor ssd = default;
        ulong trErr = s->Tr.Selector & ~3UL;
        if (lma)
        {
            ulong at = (ulong)(4 + newCpl * 8);
            if (at + 7 > s->Tr.Limit) throw new CpuFault(Vector.TS, trErr);
            using (c.Mmu.Supervisor()) newSp = Mem.Read64(c, s->Tr.Base + at);
            newSs = NullSegment((ushort)newCpl); // IA-32e: SS is a null selector with RPL = new CPL
        }
        else
        {
            bool tss32 = (s->Tr.Attributes & 0xF) is 0x9 or 0xB;
            ulong at = tss32 ? (ulong)(newCpl * 8 + 4) : (ulong)(newCpl * 4 + 2);
            if (at + (tss32 ? 5UL : 3UL) > s->Tr.Limit) throw new CpuFault(Vector.TS, trErr);
            ushort ss;
            using (c.Mmu.Supervisor())
            {
                newSp = tss32 ? Mem.Read32(c, s->Tr.Base + at) : Mem.Read16(c, s->Tr.Base + at);
                ss = Mem.Read16(c, s->Tr.Base + at + (tss32 ? 4UL : 2UL));
            }
            ulong ssErr = ss & ~3UL;
            if ((ss & ~3) == 0) throw new CpuFault(Vector.TS, ssErr);
            ssd = FetchDescriptor(c, ss, out ssLin, Vector.TS);
            if ((ss & 3) != newCpl || ssd.Dpl != newCpl || !ssd.IsWritableData) throw new CpuFault(Vector.TS, ssErr);
            if (!ssd.Present) throw new CpuFault(Vector.SS, ssErr);
            newSs = new Descriptor(ssd.Raw | (1UL << 40)).ToCache(ss);
        }

        int newAddr = lma ? 8 : (newSs.Attributes & SegmentCache.DefaultBig) != 0 ? 4 : 2;
        var inner = StackCursor.For(newSs, newSp, newAddr, lma);
        inner.Supervisor = true; // the inner level is below the caller's CPL 3 at most: a supervisor stack
        inner.Checked = !lma;
        inner.Error = newSs.Selector & ~3UL;
        var outer = StackCursor.Current(s);
        inner.Push(c, gateSize, s->Ss.Selector);
        inner.Push(c, gateSize, s->Gpr[4]);
        // Legacy call gates copy ParamCount stack slots of the gate's size from the caller's stack (SDM 5.8.5).
        int paramCount = lma ? 0 : (int)((gate.Raw >> 32) & 0x1F);
        for (int k = paramCount - 1; k >= 0; k--)
            inner.Push(c, gateSize, outer.Peek(c, gateSize, (ulong)(k * gateSize)));
        inner.Push(c, gateSize, s->Cs.Selector);
        inner.Push(c, gateSize, s->Rip);

        if (!lma) SetAccessed(c, ssLin, ssd);
        s->Ss = newSs;
        if (lma) s->Gpr[4] = inner.Sp;
        else SetStackPointer(s, newAddr, inner.Sp);
        CommitCs(c, codeLin, code, (ushort)((sel & ~3) | newCpl), offset);
    }

    static int RetfOperandSize(Code code) => code switch
    {
        Code.Retfw or Code.Retfw_imm16 => 2,
        Code.Retfd or Code.Retfd_imm16 => 4,
        _ => 8,
    };

    /// <summary>Checks of a return code-segment selector shared by far RET and IRET (SDM RET and IRET pages).</summary>
    static Descriptor CheckReturnCs(CpuCore c, ushort cs, out ulong lin)
    {
        CpuState* s = c.State;
        ulong err = cs & ~3UL;
        int rpl = cs & 3;
        if ((cs & ~3) == 0) throw CpuFault.GP();
        var d = FetchDescriptor(c, cs, out lin);
        if (!d.IsCode || rpl < s->Cpl) throw CpuFault.GP(err);
        if (d.IsConforming ? d.Dpl > rpl : d.Dpl != rpl) throw CpuFault.GP(err);
        if (IsLongModeActive(s) && d.Long && d.DefaultBig) throw CpuFault.GP(err);
        if (!d.Present) throw new CpuFault(Vector.NP, err);
        return d;
    }

    /// <summary>Checks of the SS popped by a return to an outer level (or by IRET in 64-bit mode). A null SS is
    /// allowed only when returning to 64-bit code below CPL 3.</summary>
    static SegmentCache CheckReturnSs(CpuCore c, ushort ss, int rpl, bool target64, out ulong lin, out Descriptor d)
    {
        ulong err = ss & ~3UL;
        lin = 0; d = default;
        if ((ss & ~3) == 0)
        {
            if (target64 && rpl != 3 && (ss & 3) == rpl) return NullSegment(ss);
            throw CpuFault.GP();
        }
        d = FetchDescriptor(c, ss, out lin);
        if ((ss & 3) != rpl || !d.IsWritableData || d.Dpl != rpl) throw CpuFault.GP(err);
        if (!d.Present) throw new CpuFault(Vector.SS, err);
        return new Descriptor(d.Raw | (1UL << 40)).ToCache(ss);
    }

    /// <summary>After a return to an outer level, data segments the new CPL may not use become null
    /// (SDM RET/IRET: data or non-conforming code with DPL &lt; CPL).</summary>
    static void InvalidateDataSegments(CpuState* s, int cpl)
    {
        for (int r = 0; r < 6; r++)
        {
            if (r is (int)SegReg.Cs or (int)SegReg.Ss) continue;
            ref SegmentCache seg = ref s->Seg((SegReg)r);
            bool conformingCode = (seg.Attributes & 0x1C) == 0x1C;
            if ((seg.Attributes & SegmentCache.Present) != 0 && !conformingCode && seg.Dpl < cpl)
            {
                seg.Selector = 0;
                seg.Attributes = 0;
            }
        }
    }

    static void FarRet(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = RetfOperandSize(i.Code);
        ulong imm = i.Op0Kind == OpKind.Immediate16 ? i.Immediate16 : 0UL;
        var k = StackCursor.Current(s);
        ulong offset = MaskOffset(k.Pop(c, size), size);
        ushort cs = (ushort)k.Pop(c, size);
        if (!IsProtected(s))
        {
            if ((s->Rflags & RFlags.VM) != 0) throw new UnsupportedGuestFeatureException("virtual-8086 mode");
            k.Skip(imm);
            SetStackPointer(s, k.AddrSize, k.Sp);
            s->Cs.LoadRealMode(cs);
            s->Rip = offset;
            c.OnPrivilegeOrModeChange();
            return;
        }
        var d = CheckReturnCs(c, cs, out ulong csLin);
        bool target64 = IsLongModeActive(s) && d.Long;
        int rpl = cs & 3;
        if (rpl == s->Cpl)
        {
            CheckCodeOffset(d, target64, offset);
            k.Skip(imm);
            SetStackPointer(s, k.AddrSize, k.Sp);
            CommitCs(c, csLin, d, cs, offset);
            return;
        }
        // RETURN-TO-OUTER-PRIVILEGE-LEVEL: skip the parameters, pop SS:eSP, then release them from the outer stack.
        k.Skip(imm);
        ulong sp = k.Pop(c, size);
        ushort ss = (ushort)k.Pop(c, size);
        var newSs = CheckReturnSs(c, ss, rpl, target64, out ulong ssLin, out var ssd);
        CheckCodeOffset(d, target64, offset);
        if ((ss & ~3) != 0) SetAccessed(c, ssLin, ssd);
        s->Ss = newSs;
        int addr = target64 ? 8 : (newSs.Attributes & SegmentCache.DefaultBig) != 0 ? 4 : 2;
        s->Gpr[4] = StackCursor.Wrap(MaskOffset(sp, size) + imm, addr) | (addr == 2 ? s->Gpr[4] & ~0xFFFFUL : 0);
        CommitCs(c, csLin, d, cs, offset);
        InvalidateDataSegments(s, rpl);
    }

    /// <summary>RFLAGS as IRET restores them: IF only when CPL &lt;= IOPL, IOPL/VIF/VIP only at CPL 0, and a
    /// 16-bit IRET changes only bits 15:0 (SDM IRET operation).</summary>
    static void RestoreIretFlags(CpuState* s, ulong popped, int size, int cpl)
    {
        ulong old = Flags.Get(s);
        ulong mask = RFlags.Status | RFlags.TF | RFlags.DF | RFlags.NT;
        if (size >= 4) mask |= RFlags.RF | RFlags.AC | RFlags.ID;
        if (cpl <= (int)((old >> 12) & 3)) mask |= RFlags.IF;
        if (cpl == 0)
        {
            mask |= RFlags.IOPL;
            if (size >= 4) mask |= RFlags.VIF | RFlags.VIP;
        }
        Flags.Set(s, (old & ~mask) | (popped & mask) | RFlags.Reserved1);
    }

    static void Iret(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = i.Mnemonic switch { Mnemonic.Iret => 2, Mnemonic.Iretd => 4, _ => 8 };
        var k = StackCursor.Current(s);
        if ((s->Cr0 & Cr0.PE) == 0)
        {
            ulong ip = k.Pop(c, size);
            ushort rcs = (ushort)k.Pop(c, size);
            ulong fl = k.Pop(c, size);
            if (ip > 0xFFFF) throw CpuFault.GP(); // beyond the real-mode CS limit
            ulong old = Flags.Get(s);
            // Real mode: a 32-bit IRET keeps VIP, VIF and VM (mask 1A0000H) and loads the rest (mask 257FD5H).
            ulong nf = size == 2 ? (old & ~0xFFFFUL) | (fl & 0xFFFF) : (fl & 0x257FD5) | (old & 0x1A0000);
            SetStackPointer(s, k.AddrSize, k.Sp);
            Flags.Set(s, nf | RFlags.Reserved1);
            s->Cs.LoadRealMode(rcs);
            s->Rip = ip;
            s->NmiBlocked = 0;
            c.OnPrivilegeOrModeChange();
            return;
        }
        if ((s->Rflags & RFlags.VM) != 0) throw new UnsupportedGuestFeatureException("virtual-8086 mode");
        bool lma = IsLongModeActive(s);
        if ((s->Rflags & RFlags.NT) != 0)
        {
            if (lma) throw CpuFault.GP();
            throw new UnsupportedGuestFeatureException("hardware task switching (IRET with EFLAGS.NT = 1)");
        }
        ulong offset = MaskOffset(k.Pop(c, size), size);
        ushort cs = (ushort)k.Pop(c, size);
        ulong flags = k.Pop(c, size);
        if (!lma && size == 4 && (flags & RFlags.VM) != 0 && s->Cpl == 0)
            throw new UnsupportedGuestFeatureException("virtual-8086 mode (IRET to EFLAGS.VM = 1)");
        var d = CheckReturnCs(c, cs, out ulong csLin);
        bool target64 = lma && d.Long;
        int rpl = cs & 3;
        int cpl = s->Cpl;
        bool outer = rpl > cpl;
        // IRET in 64-bit mode pops SS:RSP even without a privilege change (SDM IRET, IA-32e-MODE).
        bool popStack = outer || Is64BitMode(s);
        SegmentCache newSs = s->Ss;
        ulong ssLin = 0, newSp = 0;
        Descriptor ssd = default;
        if (popStack)
        {
            newSp = k.Pop(c, size);
            ushort ss = (ushort)k.Pop(c, size);
            newSs = CheckReturnSs(c, ss, rpl, target64, out ssLin, out ssd);
        }
        CheckCodeOffset(d, target64, offset);

        // Commit.
        RestoreIretFlags(s, flags, size, cpl);
        if (popStack)
        {
            if ((newSs.Selector & ~3) != 0) SetAccessed(c, ssLin, ssd);
            s->Ss = newSs;
            if (size == 8) s->Gpr[4] = newSp;
            else if (size == 4) s->Gpr[4] = (uint)newSp;
            else s->Gpr[4] = (s->Gpr[4] & ~0xFFFFUL) | (newSp & 0xFFFF);
        }
        else SetStackPointer(s, k.AddrSize, k.Sp);
        s->NmiBlocked = 0; // IRET ends NMI blocking (SDM 6.7.1)
        CommitCs(c, csLin, d, cs, offset);
        if (outer) InvalidateDataSegments(s, rpl);
    }
}
