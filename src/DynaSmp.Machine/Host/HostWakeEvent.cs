using System.Runtime.InteropServices;

namespace DynaSmp.Machine.Host;

/// <summary>The event a sleeping vCPU thread waits on (manual reset): a Linux futex word on x86-64 hosts,
/// ManualResetEventSlim elsewhere. <see cref="Wait"/> may return early (a signal, a spurious wake-up); callers re-check
/// their condition, as the vCPU loop does.</summary>
/// <remarks>PERF: from Set to the waiter running, ManualResetEventSlim took 22-44 us (median) on a 2-core Firecracker
/// host, a futex 3-4 us (a ping-pong of 300 wakes, the waker busy afterwards as a BSP is). Its Monitor wait goes through a
/// condition variable and a mutex the woken thread must take again. An AP asleep until its INIT spent most of its
/// bring-up in that wake-up.</remarks>
public sealed unsafe class HostWakeEvent : IDisposable
{
    const long SysFutex = 202; // x86-64
    const int FutexWaitPrivate = 0 | 128, FutexWakePrivate = 1 | 128;

    int* _word; // 1 = set
    readonly ManualResetEventSlim? _fallback;

    public HostWakeEvent()
    {
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
            _word = (int*)NativeMemory.AllocZeroed(sizeof(int));
        else _fallback = new ManualResetEventSlim(false, spinCount: 1);
    }

    public void Set()
    {
        if (_fallback != null) { _fallback.Set(); return; }
        // Only a 0 -> 1 change can have a waiter to wake: futex_wait sleeps only while the word is 0.
        if (Interlocked.Exchange(ref *_word, 1) == 0) Syscall(SysFutex, _word, FutexWakePrivate, int.MaxValue, null, null, 0);
    }

    public void Reset()
    {
        if (_fallback != null) _fallback.Reset();
        else Volatile.Write(ref *_word, 0);
    }

    /// <summary>Sleeps until set or <paramref name="timeoutMs"/> (Timeout.Infinite: none) passes; true if set.</summary>
    public bool Wait(int timeoutMs)
    {
        if (_fallback != null) return _fallback.Wait(timeoutMs);
        if (Volatile.Read(ref *_word) != 0) return true;
        if (timeoutMs == Timeout.Infinite) Syscall(SysFutex, _word, FutexWaitPrivate, 0, null, null, 0);
        else
        {
            var ts = new Timespec { Seconds = timeoutMs / 1000, Nanoseconds = timeoutMs % 1000 * 1_000_000L };
            Syscall(SysFutex, _word, FutexWaitPrivate, 0, &ts, null, 0);
        }
        return Volatile.Read(ref *_word) != 0;
    }

    public void Dispose()
    {
        _fallback?.Dispose();
        if (_word != null) { NativeMemory.Free(_word); _word = null; }
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Timespec
    {
        public long Seconds, Nanoseconds;
    }

    [DllImport("libc", EntryPoint = "syscall")]
    static extern long Syscall(long number, int* address, int operation, int value, Timespec* timeout, int* address2, int value3);
}
