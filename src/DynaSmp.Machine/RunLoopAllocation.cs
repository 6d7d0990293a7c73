namespace DynaSmp.Machine;

/// <summary>
/// One run-loop thread's allocation outside translation, from the VM's steady-state mark to the thread's end. Per-thread
/// counters make "the hot loop allocates nothing" exact: the process-wide total also counts runtime threads DynaSmp does
/// not own (finalizer, tiered compilation), which left a few hundred bytes of noise in a 300 s storm.
/// </summary>
internal struct RunLoopAllocation
{
    int _seen;
    long _start;
    bool _started;

    static long OwnBytes() => GC.GetAllocatedBytesForCurrentThread() - Jit.Translation.TranslationCost.CurrentThreadBytes;

    /// <summary>Once per loop turn: one volatile read unless the mark moved.</summary>
    public void Poll(Vm vm)
    {
        int mark = Volatile.Read(ref vm.SteadyStateMark);
        if (mark == _seen) return;
        _seen = mark;
        _start = OwnBytes();
        _started = true;
    }

    public void Finish(Vm vm)
    {
        if (_started) vm.ChargeRunLoop(OwnBytes() - _start);
    }
}
