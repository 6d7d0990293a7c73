using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DynaSmp.Jit.Cpu;

#pragma warning disable CA1051 // Emitted IL reaches these fields by offset; public fields are the point.

/// <summary>
/// The architectural state of one vCPU, in unmanaged memory so that translated code reaches every field
/// through one pointer with a constant offset, and the GC never moves it under a running block.
/// </summary>
/// <remarks>RFLAGS is lazy: the six status flags are valid in <see cref="Rflags"/> only when
/// <see cref="FlagOp"/> is <see cref="Cpu.FlagOp.None"/>; otherwise they are a function of the last
/// flag-producing operation recorded in FlagOp/FlagSize/FlagRes/FlagSrc1/FlagSrc2 (QEMU's cc_op idea).</remarks>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CpuState
{
    public const int TlbEntries = 256;

    // General registers in encoding order: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15.
    public fixed ulong Gpr[16];
    public ulong Rip;
    public ulong Rflags;
    public FlagOp FlagOp;
    public int FlagSize;
    public ulong FlagRes, FlagSrc1, FlagSrc2;

    // Set by other threads (Interlocked / Volatile): non-zero makes translated code leave at the next block boundary.
    public int ExitRequest;
    // A fault raised inside a helper called from translated code: vector + 1, 0 when none.
    public int PendingFault;
    public ulong PendingErrorCode;
    public ExecMode Mode;
    public byte Cpl;
    byte _pad0, _pad1;
    public int HaltRequested;
    // Set by the machine (Interlocked) while its interrupt controller has a maskable interrupt to offer.
    public int InterruptRequest;
    // Set by the machine (Interlocked) when an NMI is pending.
    public int NmiPending;
    // NMI delivered and not yet followed by IRET (SDM 6.7.1).
    public int NmiBlocked;
    // STI / MOV SS / POP SS shadow: interrupts wait until one more instruction has completed (SDM 6.8.3).
    public int InterruptShadow;
    // Address of the exit slot a chained jump went through, so the dispatcher can link it (see CompiledBlock).
    public nint LastExitSlot;
    // Exit slots of the compiled block being entered: translated code is shared by every VM that runs the same
    // instructions (SharedTranslations), so its direct exits index this per-VM array instead of fixed addresses.
    public nint ExitSlots;

    // Return-address prediction: compiled CALLs push the return address, the caller's code context (mode and CS base)
    // and the address of an exit slot of the caller's own for that address (0: none); a compiled RET whose popped
    // address and context match leaves through that slot, linked by the dispatcher like any direct exit, instead of
    // probing the jump cache. Cleared with the jump cache (paging changes); a mode or CS base change needs no clearing,
    // since the RET compares the context its own code was compiled for.
    public const int ReturnStackEntries = 16;
    public fixed ulong RasRip[ReturnStackEntries];
    public fixed ulong RasContext[ReturnStackEntries];
    public fixed long RasSlot[ReturnStackEntries];
    public int RasTop;
    // RETs that left through a predicted slot (for profiles and tests).
    public long RasHits;

    public SegmentCache Es, Cs, Ss, Ds, Fs, Gs, Ldtr, Tr;
    public ulong GdtrBase, IdtrBase;
    public uint GdtrLimit, IdtrLimit;

    public ulong Cr0, Cr2, Cr3, Cr4, Cr8, Efer;
    public fixed ulong Dr[8];

    // XMM0-15, low qword first; MXCSR.
    public fixed ulong Xmm[32];
    public uint Mxcsr;
    public ushort FpuControl, FpuStatus;

    public ulong TscOffset, TscAux, KernelGsBase, Star, Lstar, Cstar, Sfmask;
    public ulong SysenterCs, SysenterEsp, SysenterEip, Pat, MiscEnable, ApicBase, SpecCtrl;
    public fixed ulong MtrrFixed[11];
    public fixed ulong MtrrVar[16];
    public ulong MtrrDefType;

    // Software TLB: per entry (tag = page-aligned linear address, or ~0 when empty; addend = host - linear).
    public fixed ulong TlbRead[TlbEntries * 2];
    public fixed ulong TlbWrite[TlbEntries * 2];

    public ulong InstructionsRetired;
    // The read window (owned by Mmu): a linear range that maps to RAM at one offset, read by compiled code without a TLB
    // probe on the load's dependency chain (a read at lin with lin - WinBase < WinLimit is at host lin + WinAddend). With
    // CR0.PG clear it is all of RAM (Mmu.SyncWindowWithPaging); with paging, the large page (2 MiB, 4 MiB, 1 GiB) of the
    // last read-TLB fill that lies wholly in RAM, with its same-offset neighbours (Mmu.OpenWindow). WinLimit stops 8
    // bytes short of the end, so no access of up to 8 bytes crosses it; 0 is empty.
    public ulong WinBase, WinLimit, WinAddend;
    public ulong RamBase, RamSize;
    // Tier 0's reads, and those of them inside the read window: the profile that decides whether compiled 64-bit code
    // tries the window before the TLB (CpuCore.Interpret credits each block with its share).
    public ulong ProfiledReads, ProfiledWindowHits;
    // Translated code compiled with JitOptions.BoundedRuns leaves at block boundaries once this is reached.
    public ulong RetireLimit;

    // x87 state besides FpuControl/FpuStatus (TOP is FSW bits 11-13): abridged tag word (bit n = physical register
    // n not empty; the full tag word is derived from the contents), last opcode, instruction and data pointers (with
    // selectors for the 32-bit formats), and the eight physical registers as 80-bit values (ST(i) = (TOP + i) mod 8).
    public byte FpuTag;
    public ushort FpuOpcode, FpuCs, FpuDs;
    public ulong FpuIp, FpuDp;
    public fixed byte FpuRegs[80];

    // Compiled code's values that are not guest registers (the pending flag record, loop retirement count), stored here
    // around a slow path's helper call so that no IL local lives across the call (see BlockEmitter.SaveForCall).
    public fixed ulong JitSpill[8];

    public static readonly int TlbReadOffset = (int)Marshal.OffsetOf<CpuState>(nameof(TlbRead));
    public static readonly int TlbWriteOffset = (int)Marshal.OffsetOf<CpuState>(nameof(TlbWrite));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref SegmentCache Seg(SegReg s)
    {
        fixed (SegmentCache* p = &Es) return ref p[(int)s];
    }

    /// <summary>Forgets every predicted return (their slots link to code chosen under the old mappings or mode).</summary>
    public void FlushReturnStack()
    {
        for (int k = 0; k < ReturnStackEntries; k++) RasSlot[k] = 0;
    }

    /// <summary>INVLPG of <paramref name="linear"/>: forgets the predicted returns whose code it may remap. The page size
    /// of a return's mapping is not kept, so every return in the same 1 GiB (the largest page) goes, checked for the
    /// return address and the page after it, into which its block may run.</summary>
    public void FlushReturnStackNear(ulong linear)
    {
        for (int k = 0; k < ReturnStackEntries; k++)
        {
            if (RasSlot[k] == 0) continue;
            ulong lin = RasRip[k] + (RasContext[k] & 0xFFFF_FFFF_FFFF);
            if (Near(lin, linear) || Near(lin & 0xFFFF_FFFF, linear)) RasSlot[k] = 0; // legacy modes wrap at 4 GiB
        }
        static bool Near(ulong lin, ulong linear) => ((lin ^ linear) >> 30) == 0 || (((lin + 4096) ^ linear) >> 30) == 0;
    }

    public void FlushTlb()
    {
        for (int i = 0; i < TlbEntries * 2; i += 2)
        {
            TlbRead[i] = ulong.MaxValue;
            TlbWrite[i] = ulong.MaxValue;
        }
    }
}
