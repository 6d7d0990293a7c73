namespace DynaSmp.Jit.Translation;

/// <summary>
/// Bytes the process allocated decoding new guest code and compiling it to IL, counted on whichever thread did it.
/// Translation allocates by nature (Iced instructions, IL builders, RyuJIT); the run loop must not. Subtracting this
/// from the process total over a window leaves what the run loop allocated, which is what "steady state allocates
/// nothing" is about when a guest keeps reaching code it has not run before.
/// </summary>
public static class TranslationCost
{
    static long _allocatedBytes, _active, _begun;
    [ThreadStatic] static long t_threadBytes;

    /// <summary>What translation has allocated on the calling thread so far (its share of
    /// GC.GetAllocatedBytesForCurrentThread), so a run-loop thread can account for itself exactly.</summary>
    public static long CurrentThreadBytes => t_threadBytes;

    public static long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    /// <summary>Marks a translation as running; returns the thread's allocation count to hand to <see cref="End"/>.</summary>
    internal static long Begin()
    {
        Interlocked.Increment(ref _begun);
        Interlocked.Increment(ref _active);
        return GC.GetAllocatedBytesForCurrentThread();
    }

    internal static void End(long allocatedBefore)
    {
        long spent = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        t_threadBytes += spent;
        Interlocked.Add(ref _allocatedBytes, spent);
        Interlocked.Decrement(ref _active);
    }

    /// <summary>The process's allocated bytes and the translation share of them, read at an instant when no
    /// translation was half done (a half-done one has allocated but not yet charged), so that differences of two
    /// snapshots split exactly. Retries while translations overlap the read; after many tries it takes the last read.</summary>
    public static (long Process, long Translation) Snapshot()
    {
        long process = 0, translation = 0;
        for (int tries = 0; tries < 10_000; tries++)
        {
            long begun = Volatile.Read(ref _begun);
            bool idle = Volatile.Read(ref _active) == 0;
            translation = Volatile.Read(ref _allocatedBytes);
            process = GC.GetTotalAllocatedBytes(precise: true);
            if (idle && Volatile.Read(ref _active) == 0 && Volatile.Read(ref _begun) == begun) break;
            Thread.Yield();
        }
        return (process, translation);
    }
}
