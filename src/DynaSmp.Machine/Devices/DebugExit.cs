namespace DynaSmp.Machine.Devices;

/// <summary>
/// QEMU's isa-debug-exit (as configured with iobase=0xF4,iosize=4): a guest write of v stops the machine with
/// exit status (v &lt;&lt; 1) | 1, which is what QEMU passes to exit(). A process exit status keeps only the low
/// 8 bits (<see cref="ProcessExitStatus"/>). Reads return 0, as in current QEMU.
/// </summary>
public sealed class DebugExit : IPortDevice
{
    public const int DefaultPortCount = 4;

    // 0 = no request yet; otherwise 1 << 32 | status, so the first writer wins with one CompareExchange.
    long _state;

    /// <summary>Raised once, on the writing vCPU's thread, with the exit status of the first write.</summary>
    public event Action<int>? ExitRequested;

    public int MaxAccessSize => 4;

    /// <summary>The exit status the guest requested, or null while none was.</summary>
    public int? ExitCode
    {
        get
        {
            long s = Volatile.Read(ref _state);
            return s == 0 ? null : (int)(uint)s;
        }
    }

    /// <summary>What a shell sees as QEMU's exit status for the same write.</summary>
    public int? ProcessExitStatus => ExitCode & 0xFF;

    /// <summary>The status QEMU computes for a write of <paramref name="value"/>: exit((val &lt;&lt; 1) | 1), truncated to int.</summary>
    public static int StatusFor(uint value) => (int)((value << 1) | 1);

    public uint PortRead(ushort port, int size) => 0;

    public void PortWrite(ushort port, int size, uint value)
    {
        if (size < 4) value &= (1u << (8 * size)) - 1;
        long next = 1L << 32 | (uint)StatusFor(value);
        // Several vCPUs may write at once: only the first request counts, like QEMU's exit() ending the process.
        if (Interlocked.CompareExchange(ref _state, next, 0) == 0)
            ExitRequested?.Invoke(StatusFor(value));
    }
}
