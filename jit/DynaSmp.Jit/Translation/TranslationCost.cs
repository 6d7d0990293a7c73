namespace DynaSmp.Jit.Translation;

/// <summary>
/// Bytes allocated decoding new guest code and compiling it to IL, counted on whichever thread did it. Translation
/// allocates by nature (Iced instructions, IL builders, RyuJIT); the run loop must not. A run-loop thread subtracts its
/// own share (<see cref="CurrentThreadBytes"/>) from its allocation count, and the storm reports the total beside it.
/// </summary>
public static class TranslationCost
{
    static long _allocatedBytes;
    [ThreadStatic] static long t_threadBytes;

    /// <summary>All translation so far, every thread.</summary>
    public static long AllocatedBytes => Volatile.Read(ref _allocatedBytes);

    /// <summary>What translation has allocated on the calling thread so far (its share of
    /// GC.GetAllocatedBytesForCurrentThread), so a run-loop thread can account for itself exactly.</summary>
    public static long CurrentThreadBytes => t_threadBytes;

    /// <summary>Returns the thread's allocation count to hand to <see cref="End"/>.</summary>
    internal static long Begin() => GC.GetAllocatedBytesForCurrentThread();

    internal static void End(long allocatedBefore)
    {
        long spent = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        t_threadBytes += spent;
        Interlocked.Add(ref _allocatedBytes, spent);
    }
}
