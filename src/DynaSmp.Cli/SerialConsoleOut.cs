namespace DynaSmp.Cli;

/// <summary>The guest's serial output on the host's stdout: bytes collect until a newline, a full buffer or
/// <see cref="QuietMs"/> without a newline (a shell prompt, an echoed key), then leave in one write.</summary>
/// <remarks>PERF: stdout is an unbuffered stream, and writing each guest byte was a write(2) per byte, about 20k per Debian
/// boot log, each waking whatever reads the pipe on the same few host cores. QEMU's stdio chardev also writes per byte;
/// a terminal sees no difference.</remarks>
public sealed class SerialConsoleOut : IDisposable
{
    /// <summary>How long a partial line may wait.</summary>
    public const int QuietMs = 10;

    readonly Stream _out;
    readonly byte[] _buffer = new byte[4096];
    readonly Lock _lock = new();
    readonly Timer _timer;
    int _count;
    bool _disposed;

    public SerialConsoleOut(Stream output)
    {
        _out = output;
        _timer = new Timer(_ => Flush(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>One guest byte (the UART calls this under its own lock, from any vCPU thread).</summary>
    public void Write(byte b)
    {
        lock (_lock)
        {
            _buffer[_count++] = b;
            if (b == '\n' || _count == _buffer.Length) FlushLocked();
            else if (_count == 1 && !_disposed) _timer.Change(QuietMs, Timeout.Infinite); // a partial line starts
        }
    }

    public void Flush()
    {
        lock (_lock) FlushLocked();
    }

    void FlushLocked()
    {
        if (_count == 0) return;
        int n = _count;
        _count = 0;
        _out.Write(_buffer, 0, n);
        _out.Flush();
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _timer.Dispose();
            FlushLocked();
        }
    }
}
