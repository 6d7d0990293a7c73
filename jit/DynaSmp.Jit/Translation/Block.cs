using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// A guest basic block: decoded once, interpreted while cold (tier 0), compiled to a DynamicMethod when
/// hot (tier 1). Shared by every vCPU using the same <see cref="BlockCache"/>.
/// </summary>
public sealed class Block
{
    public ulong Rip { get; }
    public ulong CsBase { get; }
    public ulong Phys { get; }
    public ExecMode Mode { get; }
    public Instruction[] Insns { get; }
    /// <summary>Physical pages the bytes came from (the second is ulong.MaxValue unless an instruction straddles).</summary>
    public ulong Page0 { get; }
    public ulong Page1 { get; }

    /// <summary>Tier 0's resolved operands for the instructions it runs without its general dispatch, made on first run.</summary>
    internal Interpreter.FastInsn[]? Fast;

    /// <summary>Times tier 0 ran this block; drives tier-up.</summary>
    public int ExecCount;
    /// <summary>Reads tier 0 made in this block, and how many of them fell in the read window: compiled 64-bit code
    /// tries the window first only where most did (<see cref="WindowFirst"/>).</summary>
    public long ProfiledReads, ProfiledWindowHits;

    /// <summary>Whether this block's compiled reads test the read window before the TLB: yes where tier 0 saw three
    /// in four reads or more fall inside it. PERF: window first everywhere made a Linux boot 9% slower (a quarter of its
    /// reads hit, and every read carried the extra test), where identity-mapped loops gain up to 1.9x.</summary>
    public bool WindowFirst => ProfiledReads > 0 && ProfiledWindowHits * 4 >= ProfiledReads * 3;
    /// <summary>0 while valid; set once when a write to its page invalidates it.</summary>
    public volatile bool Invalid;
    /// <summary>Tier-1 code once published (null until then). Written by the compiler thread, read by vCPUs.</summary>
    public volatile CompiledBlock? Compiled;
    /// <summary>Heads of compiled regions that inlined this block's code: invalidating this block must drop
    /// them too. Guarded by the BlockCache's lock.</summary>
    internal List<Block>? InlinedInto;

    /// <summary>1 once queued for compilation, so it is queued at most once.</summary>
    public int TierUpQueued;
    /// <summary><see cref="ExecCount"/> when the block was queued for tier 1: what it ran since then ranks it in the queue.</summary>
    public int QueuedAtCount;

    /// <summary>Set once this block's compiled code proved hot (<see cref="TierUp.Promote"/>): its region is then formed
    /// with every neighbouring block, even ones compiled or queued on their own, so a hot loop runs in one method.</summary>
    public volatile bool FullRegion;

    /// <summary>Set once the flat-segment guard of this block's 32-bit code failed: it is recompiled with per-access
    /// segment bases and limits (which flat code avoids), rather than interpreted for good.</summary>
    public volatile bool Segmented;

    public Block(ulong rip, ulong csBase, ulong phys, ExecMode mode, Instruction[] insns, ulong page0, ulong page1)
    {
        Rip = rip; CsBase = csBase; Phys = phys; Mode = mode; Insns = insns; Page0 = page0; Page1 = page1;
    }

    /// <summary>A PAUSE marks a spin-wait loop: it runs often but only to wait, so compiling it buys nothing.
    /// PERF: 64 VMs x 16 vCPUs booting on 2 host cores spent their compile time on BSPs' wait loops
    /// (0.63 s wall with no tier-up at all against 1.3-1.4 s with it).</summary>
    public bool IsSpinWait
    {
        get
        {
            foreach (var i in Insns) if (i.Mnemonic == Iced.Intel.Mnemonic.Pause) return true;
            return false;
        }
    }

    /// <summary>Bytes of guest code the block was decoded from (starting at <see cref="Phys"/>).</summary>
    public ulong ByteLength => Insns[^1].NextIP - Insns[0].IP;
}
