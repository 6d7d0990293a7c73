using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

/// <summary>Byte offsets of CpuState fields, for emitted IL.</summary>
static unsafe class StateOffsets
{
    static int Of(string f) => (int)Marshal.OffsetOf<CpuState>(f);

    public static readonly int Gpr = Of(nameof(CpuState.Gpr));
    public static readonly int Rip = Of(nameof(CpuState.Rip));
    public static readonly int Rflags = Of(nameof(CpuState.Rflags));
    public static readonly int FlagOp = Of(nameof(CpuState.FlagOp));
    public static readonly int FlagSize = Of(nameof(CpuState.FlagSize));
    public static readonly int FlagRes = Of(nameof(CpuState.FlagRes));
    public static readonly int FlagSrc1 = Of(nameof(CpuState.FlagSrc1));
    public static readonly int FlagSrc2 = Of(nameof(CpuState.FlagSrc2));
    public static readonly int ExitRequest = Of(nameof(CpuState.ExitRequest));
    public static readonly int PendingFault = Of(nameof(CpuState.PendingFault));
    public static readonly int PendingErrorCode = Of(nameof(CpuState.PendingErrorCode));
    public static readonly int LastExitSlot = Of(nameof(CpuState.LastExitSlot));
    public static readonly int ExitSlots = Of(nameof(CpuState.ExitSlots));
    public static readonly int RasRip = Of(nameof(CpuState.RasRip));
    public static readonly int RasContext = Of(nameof(CpuState.RasContext));
    public static readonly int RasSlot = Of(nameof(CpuState.RasSlot));
    public static readonly int RasTop = Of(nameof(CpuState.RasTop));
    public static readonly int RasHits = Of(nameof(CpuState.RasHits));
    public static readonly int Retired = Of(nameof(CpuState.InstructionsRetired));
    public static readonly int RetireLimit = Of(nameof(CpuState.RetireLimit));
    public static readonly int TlbRead = Of(nameof(CpuState.TlbRead));
    public static readonly int TlbWrite = Of(nameof(CpuState.TlbWrite));
    public static readonly int Xmm = Of(nameof(CpuState.Xmm));
    public static readonly int Mxcsr = Of(nameof(CpuState.Mxcsr));
    public static readonly int Cr0 = Of(nameof(CpuState.Cr0));
    public static readonly int WinBase = Of(nameof(CpuState.WinBase));
    public static readonly int WinLimit = Of(nameof(CpuState.WinLimit));
    public static readonly int WinAddend = Of(nameof(CpuState.WinAddend));
    public static readonly int FpuControl = Of(nameof(CpuState.FpuControl));
    public static readonly int FpuStatus = Of(nameof(CpuState.FpuStatus));
    public static readonly int Cr4 = Of(nameof(CpuState.Cr4));
    public static readonly int Cpl = Of(nameof(CpuState.Cpl));
    public static readonly int TscAux = Of(nameof(CpuState.TscAux));
    public static readonly int JitSpill = Of(nameof(CpuState.JitSpill));
    static readonly int SegBase = (int)Marshal.OffsetOf<SegmentCache>(nameof(SegmentCache.Base));
    static readonly int SegLimit = (int)Marshal.OffsetOf<SegmentCache>(nameof(SegmentCache.Limit));
    static readonly int SegAttributes = (int)Marshal.OffsetOf<SegmentCache>(nameof(SegmentCache.Attributes));
    static readonly int Es = Of(nameof(CpuState.Es));

    /// <summary>Segment cache fields of segment register <paramref name="r"/> (SegReg order: ES CS SS DS FS GS).</summary>
    public static int SegmentBase(SegReg r) => Es + (int)r * sizeof(SegmentCache) + SegBase;
    public static int SegmentLimit(SegReg r) => Es + (int)r * sizeof(SegmentCache) + SegLimit;
    public static int SegmentAttributes(SegReg r) => Es + (int)r * sizeof(SegmentCache) + SegAttributes;
    public static int SegmentSelector(SegReg r) => Es + (int)r * sizeof(SegmentCache) + SegSelector;
    static readonly int SegSelector = (int)Marshal.OffsetOf<SegmentCache>(nameof(SegmentCache.Selector));
    public static readonly int FsBase = Of(nameof(CpuState.Fs)) + SegBase;
    public static readonly int GsBase = Of(nameof(CpuState.Gs)) + SegBase;

    public static int GprAt(int index) => Gpr + index * 8;
}
