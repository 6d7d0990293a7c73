namespace DynaSmp.Jit.Cpu;

/// <summary>Bits of CpuState.ExitRequest. Any non-zero value makes translated code return to the
/// dispatcher at the next block boundary; the dispatcher then acts on each bit.</summary>
public static class ExitRequestBits
{
    /// <summary>Another thread asked this CPU to leave guest code (a kick).</summary>
    public const int Stop = 1;
    /// <summary>Some page became code: drop write-TLB entries so stores there take the slow path.</summary>
    public const int FlushTlb = 2;
    /// <summary>Leave the current block after the instruction that set it: this CPU wrote into translated code
    /// (the block may be stale), or a REP string instruction yielded mid-way and must be re-executed.</summary>
    public const int LeaveBlock = 4;
}
