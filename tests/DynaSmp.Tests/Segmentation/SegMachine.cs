using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;

namespace DynaSmp.Tests.Segmentation;

/// <summary>A GDT/IDT/TSS layout in guest RAM (Linux-like selectors), for protected- and long-mode tests.</summary>
public static unsafe class SegMachine
{
    public const ulong GdtBase = 0x10000, IdtBase = 0x11000, LdtBase = 0x12000, TssBase = 0x13000;
    public const ushort K32 = 0x08, K64 = 0x10, KData = 0x18, U32 = 0x20, UData = 0x28, U64 = 0x30, K16 = 0x38,
        Tss = 0x40, NotPresent = 0x50, ReadOnly = 0x58, ExecOnly = 0x60, Conforming = 0x68, Data1 = 0x70,
        Gate = 0x78, Ldt = 0x88;
    public const uint GdtLimit = 0x97;

    /// <summary>A code/data/system descriptor (SDM Figure 3-8): access = byte 5 (P, DPL, S, type); flags = G, D/B, L, AVL.</summary>
    public static ulong Desc(ulong b, uint limit, uint access, uint flags) =>
        (limit & 0xFFFFUL) | ((b & 0xFF_FFFF) << 16) | ((ulong)access << 40) | ((ulong)((limit >> 16) & 0xF) << 48)
        | ((ulong)flags << 52) | ((b >> 24 & 0xFF) << 56);

    /// <summary>A gate (SDM Figures 5-8, 6-2): type 0xC call gate, 0xE interrupt gate; dpl; ist for 64-bit IDT gates.</summary>
    public static ulong GateDesc(ushort sel, ulong offset, int type, int dpl, int paramOrIst = 0) =>
        (offset & 0xFFFF) | ((ulong)sel << 16) | ((ulong)(uint)paramOrIst << 32) | ((ulong)(0x80 | dpl << 5 | type) << 40)
        | ((offset >> 16 & 0xFFFF) << 48);

    /// <summary>Writes the GDT. <paramref name="gateTarget"/> is the call gate's target (in CS <paramref name="gateCs"/>).</summary>
    public static void Setup(Guest g, bool longMode, ushort gateCs = K64, ulong gateTarget = 0, int gateParams = 0)
    {
        g.WriteU64(GdtBase + K32, Desc(0, 0xFFFFF, 0x9A, 0xC));
        g.WriteU64(GdtBase + K64, Desc(0, 0xFFFFF, 0x9A, 0xA));
        g.WriteU64(GdtBase + KData, Desc(0, 0xFFFFF, 0x92, 0xC));
        g.WriteU64(GdtBase + U32, Desc(0, 0xFFFFF, 0xFA, 0xC));
        g.WriteU64(GdtBase + UData, Desc(0, 0xFFFFF, 0xF2, 0xC));
        g.WriteU64(GdtBase + U64, Desc(0, 0xFFFFF, 0xFA, 0xA));
        g.WriteU64(GdtBase + K16, Desc(0, 0xFFFF, 0x9A, 0x0));
        g.WriteU64(GdtBase + Tss, Desc(TssBase, 0x67, 0x89, 0));
        g.WriteU64(GdtBase + Tss + 8, 0);
        g.WriteU64(GdtBase + NotPresent, Desc(0, 0xFFFFF, 0x12, 0xC));
        g.WriteU64(GdtBase + ReadOnly, Desc(0, 0xFFFFF, 0x90, 0xC));
        g.WriteU64(GdtBase + ExecOnly, Desc(0, 0xFFFFF, 0x98, 0xC));
        g.WriteU64(GdtBase + Conforming, Desc(0, 0xFFFFF, 0x9E, 0xC));
        g.WriteU64(GdtBase + Data1, Desc(0, 0xFFFFF, 0xB2, 0xC));
        g.WriteU64(GdtBase + Gate, GateDesc(gateCs, gateTarget, 0xC, 3, gateParams));
        g.WriteU64(GdtBase + Gate + 8, longMode ? gateTarget >> 32 : 0);
        g.WriteU64(GdtBase + Ldt, Desc(LdtBase, 0x17, 0x82, 0));
        g.WriteU64(GdtBase + Ldt + 8, 0);
        // LDT entry 1 (selector 0x0C): a DPL-0 data segment based at 0x4000.
        g.WriteU64(LdtBase + 8, Desc(0x4000, 0xFFFF, 0x92, 0x4));
        CpuState* s = g.S;
        s->GdtrBase = GdtBase;
        s->GdtrLimit = GdtLimit;
        s->IdtrBase = IdtBase;
        s->IdtrLimit = longMode ? 256u * 16 - 1 : 256u * 8 - 1;
        // TR as LTR would leave it (the busy type 0xB).
        s->Tr = new SegmentCache { Selector = Tss, Base = TssBase, Limit = 0x67, Attributes = 0x8B };
    }

    /// <summary>Protected-mode (non-IA-32e) CPU at CPL 0 with CS = K32, the data registers = KData.</summary>
    public static Guest Protected32(int tier, Action<Iced.Intel.Assembler> build, ulong eip = 0x1000, ulong esp = 0x80000)
    {
        var g = Guest.Flat32(tier, build, eip, esp);
        Setup(g, longMode: false, gateCs: K32);
        CpuState* s = g.S;
        s->Cs.Selector = K32;
        s->Ss.Selector = s->Ds.Selector = s->Es.Selector = s->Fs.Selector = s->Gs.Selector = KData;
        return g;
    }

    /// <summary>64-bit mode at CPL 0 with CS = K64, SS/DS/ES = KData.</summary>
    public static Guest Long64(int tier, Action<Iced.Intel.Assembler> build, ulong rip = 0x1000, ulong rsp = 0x80000, ulong gateTarget = 0)
    {
        var g = Guest.Flat64(tier, build, rip, rsp);
        Setup(g, longMode: true, gateCs: K64, gateTarget: gateTarget);
        CpuState* s = g.S;
        s->Cs.Selector = K64;
        s->Ss.Selector = s->Ds.Selector = s->Es.Selector = KData;
        return g;
    }

    public static void IdtGate32(Guest g, int vector, ushort sel, ulong offset, int type, int dpl) =>
        g.WriteU64(IdtBase + (ulong)vector * 8, GateDesc(sel, offset, type, dpl));

    public static void IdtGate64(Guest g, int vector, ulong offset, int dpl, int ist = 0, bool present = true)
    {
        ulong lo = GateDesc(K64, offset, 0xE, dpl, ist);
        if (!present) lo &= ~(1UL << 47);
        g.WriteU64(IdtBase + (ulong)vector * 16, lo);
        g.WriteU64(IdtBase + (ulong)vector * 16 + 8, offset >> 32);
    }
}
