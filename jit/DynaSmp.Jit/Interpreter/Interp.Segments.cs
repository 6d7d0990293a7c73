using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>Segment-register loads and the descriptor-table instructions (Intel SDM Vol. 3A chapters 3 and 5;
/// MOV, LDS/LES/LFS/LGS/LSS, LGDT/LIDT/SGDT/SIDT, LLDT/SLDT, LTR/STR, LAR/LSL/VERR/VERW, SWAPGS instruction pages).</summary>
public static unsafe partial class Interp
{
    const ulong Cr4Umip = 1 << 11;

    static bool TryExecuteSegments(CpuCore c, in Instruction i)
    {
        switch (i.Mnemonic)
        {
            case Mnemonic.Lds: case Mnemonic.Les: case Mnemonic.Lfs: case Mnemonic.Lgs: case Mnemonic.Lss:
                LoadFarPointer(c, i); return true;
            case Mnemonic.Lgdt: case Mnemonic.Lidt: LoadTableRegister(c, i); return true;
            case Mnemonic.Sgdt: case Mnemonic.Sidt: StoreTableRegister(c, i); return true;
            case Mnemonic.Lldt: Lldt(c, i); return true;
            case Mnemonic.Ltr: Ltr(c, i); return true;
            case Mnemonic.Sldt: case Mnemonic.Str: StoreSystemSelector(c, i); return true;
            case Mnemonic.Lar: case Mnemonic.Lsl: case Mnemonic.Verr: case Mnemonic.Verw: CheckAccess(c, i); return true;
            case Mnemonic.Swapgs:
            {
                CpuState* s = c.State;
                if (!Is64BitMode(s)) throw CpuFault.UD();
                if (s->Cpl != 0) throw CpuFault.GP();
                (s->Gs.Base, s->KernelGsBase) = (s->KernelGsBase, s->Gs.Base);
                return true;
            }
        }
        return false;
    }

    static bool IsProtected(CpuState* s) => (s->Cr0 & Cr0.PE) != 0 && (s->Rflags & RFlags.VM) == 0;
    static bool IsLongModeActive(CpuState* s) => (s->Efer & Efer.LMA) != 0;

    /// <summary>Linear address of the descriptor a selector names, or false when the selector is null or
    /// the entry (of <paramref name="bytes"/> bytes) lies beyond the GDT/LDT limit (SDM 3.4.2, 3.5.1).</summary>
    static bool DescriptorAddress(CpuState* s, ushort selector, int bytes, out ulong lin)
    {
        ulong index = (ulong)(selector & ~7);
        ulong tableBase, tableLimit;
        lin = 0;
        if ((selector & 4) != 0)
        {
            if ((s->Ldtr.Attributes & SegmentCache.Present) == 0) return false; // no usable LDT
            tableBase = s->Ldtr.Base; tableLimit = s->Ldtr.Limit;
        }
        else
        {
            if (index == 0) return false;
            tableBase = s->GdtrBase; tableLimit = s->GdtrLimit;
        }
        if (index + (ulong)bytes - 1 > tableLimit) return false;
        lin = tableBase + index;
        if (!Is64BitMode(s)) lin = (uint)lin;
        return true;
    }

    /// <summary>Reads the descriptor of a non-null selector; beyond the table limit raises
    /// <paramref name="vector"/>(selector) (SDM 6.13: the error code is the selector without its RPL).</summary>
    static Descriptor FetchDescriptor(CpuCore c, ushort selector, out ulong lin, int vector = Vector.GP)
    {
        using var supervisor = c.Mmu.Supervisor(); // descriptor tables: implicit supervisor accesses (SDM 4.6.1)
        if (!DescriptorAddress(c.State, selector, 8, out lin)) throw new CpuFault(vector, selector & ~3UL);
        return new Descriptor(Mem.Read64(c, lin));
    }

    /// <summary>Upper half of a 16-byte system descriptor in IA-32e mode (SDM 7.2.3, 5.8.3.1): supplies base
    /// or offset bits 63:32; its type field must be zero.</summary>
    static ulong FetchUpperHalf(CpuCore c, ushort selector, int vector = Vector.GP)
    {
        using var supervisor = c.Mmu.Supervisor(); // descriptor tables: implicit supervisor accesses (SDM 4.6.1)
        if (!DescriptorAddress(c.State, selector, 16, out ulong lin)) throw new CpuFault(vector, selector & ~3UL);
        ulong hi = Mem.Read64(c, lin + 8);
        if (((hi >> 40) & 0x1F) != 0) throw new CpuFault(vector, selector & ~3UL);
        return hi;
    }

    /// <summary>Sets the descriptor's accessed bit (type bit 0) as hardware does on a segment load, with a
    /// locked OR so that a concurrent update by another vCPU is not lost.</summary>
    static void SetAccessed(CpuCore c, ulong lin, in Descriptor d)
    {
        using var supervisor = c.Mmu.Supervisor(); // descriptor tables: implicit supervisor accesses (SDM 4.6.1)
        if ((d.Raw & (1UL << 40)) != 0) return;
        byte* p = Mem.HostPointer(c, lin + 4, 4, MemAccess.Write);
        if (p != null) Interlocked.Or(ref *(uint*)p, 1u << 8);
        else Mem.Write8(c, lin + 5, (byte)((d.Raw >> 40) | 1));
    }

    /// <summary>Marks a TSS descriptor busy (type bit 1), as LTR does.</summary>
    static void SetBusy(CpuCore c, ulong lin, in Descriptor d)
    {
        using var supervisor = c.Mmu.Supervisor(); // descriptor tables: implicit supervisor accesses (SDM 4.6.1)
        byte* p = Mem.HostPointer(c, lin + 4, 4, MemAccess.Write);
        if (p != null) Interlocked.Or(ref *(uint*)p, 1u << 9);
        else Mem.Write8(c, lin + 5, (byte)((d.Raw >> 40) | 2));
    }

    static SegmentCache NullSegment(ushort selector) => new() { Selector = selector };

    /// <summary>Loads a data or stack segment register with the checks of the MOV/POP/LDS instruction pages
    /// (SDM 5.5-5.7). Real and virtual-8086 mode: base = selector * 16, limit and attributes kept.</summary>
    public static void LoadSegment(CpuCore c, SegReg seg, ushort selector)
    {
        CpuState* s = c.State;
        ref SegmentCache cache = ref s->Seg(seg);
        if (!IsProtected(s)) { cache.LoadRealMode(selector); return; }
        cache = CheckedSegment(c, seg, selector);
    }

    /// <summary>The descriptor cache a protected-mode load of <paramref name="selector"/> into a data or stack
    /// register produces; faults without changing state (except the descriptor's accessed bit).</summary>
    static SegmentCache CheckedSegment(CpuCore c, SegReg seg, ushort selector)
    {
        CpuState* s = c.State;
        ulong err = selector & ~3UL;
        int rpl = selector & 3, cpl = s->Cpl;
        if ((selector & ~3) == 0)
        {
            if (seg != SegReg.Ss) return NullSegment(selector);
            // A null SS is legal only in 64-bit mode below CPL 3 with RPL = CPL (MOV instruction page).
            if (Is64BitMode(s) && cpl != 3 && rpl == cpl) return NullSegment(selector);
            throw CpuFault.GP();
        }
        var d = FetchDescriptor(c, selector, out ulong lin);
        if (seg == SegReg.Ss)
        {
            if (rpl != cpl || !d.IsWritableData || d.Dpl != cpl) throw CpuFault.GP(err);
            if (!d.Present) throw new CpuFault(Vector.SS, err);
        }
        else
        {
            if (!d.IsCodeOrData || !d.IsReadable) throw CpuFault.GP(err);
            if (!d.IsConforming && (rpl > d.Dpl || cpl > d.Dpl)) throw CpuFault.GP(err);
            if (!d.Present) throw new CpuFault(Vector.NP, err);
        }
        SetAccessed(c, lin, d);
        return new Descriptor(d.Raw | (1UL << 40)).ToCache(selector);
    }

    /// <summary>LDS/LES/LFS/LGS/LSS r, m16:16/32/64: the offset comes first, the selector after it.</summary>
    static void LoadFarPointer(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op1Kind != OpKind.Memory) throw CpuFault.UD();
        int size = i.Op0Register.GetSize();
        ulong lin = MemAddress(s, i);
        ulong offset = Mem.Read(c, lin, size);
        ushort sel = Mem.Read16(c, lin + (ulong)size);
        SegReg seg = i.Mnemonic switch
        {
            Mnemonic.Lds => SegReg.Ds, Mnemonic.Les => SegReg.Es, Mnemonic.Lfs => SegReg.Fs,
            Mnemonic.Lgs => SegReg.Gs, _ => SegReg.Ss,
        };
        LoadSegment(c, seg, sel);
        WriteReg(s, i.Op0Register, offset);
    }

    /// <summary>LGDT/LIDT: 16-bit operand size loads a 24-bit base, 32-bit a 32-bit base, 64-bit mode an 8-byte base.</summary>
    static void LoadTableRegister(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.UD();
        if (s->Cpl != 0 || (s->Rflags & RFlags.VM) != 0) throw CpuFault.GP();
        ulong lin = MemAddress(s, i);
        ushort limit = Mem.Read16(c, lin);
        ulong b;
        if (Is64BitMode(s)) b = Mem.Read64(c, lin + 2);
        else
        {
            b = Mem.Read32(c, lin + 2);
            if (i.Code is Code.Lgdt_m1632_16 or Code.Lidt_m1632_16) b &= 0xFF_FFFF;
        }
        if (i.Mnemonic == Mnemonic.Lgdt) { s->GdtrBase = b; s->GdtrLimit = limit; }
        else { s->IdtrBase = b; s->IdtrLimit = limit; }
    }

    /// <summary>SGDT/SIDT store the limit and the full 32-bit (64-bit in 64-bit mode) base whatever the operand size.</summary>
    static void StoreTableRegister(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op0Kind != OpKind.Memory) throw CpuFault.UD();
        CheckUmip(s);
        bool gdt = i.Mnemonic == Mnemonic.Sgdt;
        ulong b = gdt ? s->GdtrBase : s->IdtrBase;
        uint limit = gdt ? s->GdtrLimit : s->IdtrLimit;
        ulong lin = MemAddress(s, i, i.MemorySize.GetSize(), write: true);
        bool is64 = Is64BitMode(s);
        // Probe the last byte first so a fault leaves memory untouched.
        Mem.Read8(c, lin + (is64 ? 9UL : 5UL));
        Mem.Write16(c, lin, (ushort)limit);
        if (is64) Mem.Write64(c, lin + 2, b);
        else Mem.Write32(c, lin + 2, (uint)b);
    }

    /// <summary>CR4.UMIP makes SGDT/SIDT/SLDT/STR (and SMSW) privileged (SDM 2.5).</summary>
    static void CheckUmip(CpuState* s)
    {
        if ((s->Cr4 & Cr4Umip) != 0 && s->Cpl > 0 && (s->Cr0 & Cr0.PE) != 0) throw CpuFault.GP();
    }

    static void Lldt(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (!IsProtected(s)) throw CpuFault.UD();
        if (s->Cpl != 0) throw CpuFault.GP();
        ushort sel = (ushort)ReadOp(c, i, 0, 2);
        ulong err = sel & ~3UL;
        if ((sel & ~3) == 0) { s->Ldtr = NullSegment(sel); return; } // a null selector leaves LDTR unusable
        if ((sel & 4) != 0) throw CpuFault.GP(err);
        var d = FetchDescriptor(c, sel, out _);
        if (d.IsCodeOrData || d.Type != 2) throw CpuFault.GP(err);
        ulong hi = IsLongModeActive(s) ? FetchUpperHalf(c, sel) : 0;
        if (!d.Present) throw new CpuFault(Vector.NP, err);
        var cache = d.ToCache(sel);
        cache.Base |= (hi & 0xFFFF_FFFF) << 32;
        s->Ldtr = cache;
    }

    static void Ltr(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (!IsProtected(s)) throw CpuFault.UD();
        if (s->Cpl != 0) throw CpuFault.GP();
        ushort sel = (ushort)ReadOp(c, i, 0, 2);
        ulong err = sel & ~3UL;
        if ((sel & ~3) == 0) throw CpuFault.GP();
        if ((sel & 4) != 0) throw CpuFault.GP(err);
        bool lma = IsLongModeActive(s);
        var d = FetchDescriptor(c, sel, out ulong lin);
        // Only an available TSS: 32/64-bit (type 9), or the 16-bit one (type 1) outside IA-32e mode.
        if (d.IsCodeOrData || !(d.Type == 9 || (d.Type == 1 && !lma))) throw CpuFault.GP(err);
        ulong hi = lma ? FetchUpperHalf(c, sel) : 0;
        if (!d.Present) throw new CpuFault(Vector.NP, err);
        SetBusy(c, lin, d);
        var cache = new Descriptor(d.Raw | (1UL << 41)).ToCache(sel);
        cache.Base |= (hi & 0xFFFF_FFFF) << 32;
        s->Tr = cache;
    }

    /// <summary>SLDT/STR: a register destination gets the selector zero-extended, memory gets 16 bits.</summary>
    static void StoreSystemSelector(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (!IsProtected(s)) throw CpuFault.UD();
        CheckUmip(s);
        ushort sel = i.Mnemonic == Mnemonic.Sldt ? s->Ldtr.Selector : s->Tr.Selector;
        if (i.Op0Kind == OpKind.Register) WriteReg(s, i.Op0Register, sel);
        else Mem.Write16(c, MemAddress(s, i, 2, write: true), sel);
    }

    /// <summary>LAR/LSL/VERR/VERW: report through ZF whether the selector is visible at the current CPL and RPL;
    /// an invalid selector clears ZF and never faults (SDM instruction pages).</summary>
    static void CheckAccess(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (!IsProtected(s)) throw CpuFault.UD();
        int srcOp = i.Mnemonic is Mnemonic.Lar or Mnemonic.Lsl ? 1 : 0;
        ushort sel = (ushort)ReadOp(c, i, srcOp, 2);
        bool ok = false;
        ulong result = 0;
        if (DescriptorAddress(s, sel, 8, out ulong lin))
        {
            Descriptor d;
            using (c.Mmu.Supervisor()) d = new Descriptor(Mem.Read64(c, lin));
            bool lma = IsLongModeActive(s);
            bool typeOk;
            if (d.IsCodeOrData)
            {
                typeOk = i.Mnemonic switch
                {
                    Mnemonic.Verr => d.IsReadable,
                    Mnemonic.Verw => d.IsWritableData,
                    _ => true,
                };
            }
            else
            {
                // System types LAR/LSL accept (their instruction pages); VERR/VERW accept none.
                typeOk = i.Mnemonic switch
                {
                    Mnemonic.Lar => lma ? d.Type is 2 or 9 or 0xB or 0xC : d.Type is 1 or 2 or 3 or 4 or 5 or 9 or 0xB or 0xC,
                    Mnemonic.Lsl => lma ? d.Type is 2 or 9 or 0xB : d.Type is 1 or 2 or 3 or 9 or 0xB,
                    _ => false,
                };
            }
            bool privOk = d.IsConforming && i.Mnemonic != Mnemonic.Verw || (d.Dpl >= s->Cpl && d.Dpl >= (sel & 3));
            ok = typeOk && privOk;
            if (ok && i.Mnemonic == Mnemonic.Lar) result = d.Raw >> 32 & 0x00F0_FF00;
            else if (ok && i.Mnemonic == Mnemonic.Lsl) result = d.Limit;
        }
        if (ok && i.Mnemonic is Mnemonic.Lar or Mnemonic.Lsl)
        {
            Register dst = i.Op0Register;
            WriteReg(s, dst, dst.GetSize() == 2 ? result & 0xFFFF : result);
        }
        Flags.SetStatus(s, RFlags.ZF, ok ? RFlags.ZF : 0);
    }
}
