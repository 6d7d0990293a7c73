namespace DynaSmp.Jit.Cpu;

/// <summary>Bits of CpuState.ExitRequest. Any non-zero value makes translated code return to the
/// dispatcher at the next block boundary; the dispatcher then acts on each bit.</summary>
public static class ExitRequestBits
{
    /// <summary>Another thread asked this CPU to leave guest code (a kick).</summary>
    public const int Stop = 1;
    /// <summary>Some page became code: drop write-TLB entries so stores there take the slow path.</summary>
    public const int FlushTlb = 2;
    /// <summary>This CPU wrote to a page holding translations: leave the (possibly stale) block now.</summary>
    public const int CodeModified = 4;
}
