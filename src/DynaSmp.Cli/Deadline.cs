using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Cli;

/// <summary>
/// The --timeout of one command, counted from the moment the command starts (so set-up, the run and tear-down all
/// count). The command polls <see cref="Remaining"/>; a native backstop ends the process if the managed side cannot.
/// </summary>
public sealed class Deadline
{
    /// <summary>How long after the deadline the native backstop ends the process if the command has not.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(700);
    /// <summary>How long the command waits for vCPU threads to leave after a stop before it exits without them.</summary>
    public static readonly TimeSpan JoinBudget = TimeSpan.FromMilliseconds(400);

    readonly long _start, _end;
    public double Seconds { get; }

    public Deadline(double seconds, bool backstop = true)
    {
        Seconds = seconds;
        _start = Stopwatch.GetTimestamp();
        _end = _start + (long)(seconds * Stopwatch.Frequency);
        if (backstop) NativeBackstop.Arm(seconds + Grace.TotalSeconds, $"dynasmp: timeout: the run did not end within {Grace.TotalMilliseconds:F0} ms of its {seconds} s deadline; exiting (status 124)\n");
    }

    public TimeSpan Remaining => TimeSpan.FromSeconds(Math.Max(0, _end - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
    public bool Expired => Stopwatch.GetTimestamp() >= _end;
    public double Elapsed => (Stopwatch.GetTimestamp() - _start) / (double)Stopwatch.Frequency;

    /// <summary>Throws <see cref="TimeoutExpiredException"/> if the deadline passed (between set-up steps).</summary>
    public void Check(string during)
    {
        if (Expired) throw new TimeoutExpiredException($"timeout: {Seconds} s passed during {during}");
    }
}

/// <summary>The deadline passed before the run could start (during set-up): status 124.</summary>
public sealed class TimeoutExpiredException(string message) : Exception(message);

/// <summary>
/// The last line of defence for --timeout: a native thread, outside the .NET runtime, that sleeps until the deadline
/// plus a grace period and then writes one line to stderr and calls exit_group(124).
/// </summary>
/// <remarks>Why native: a garbage collection stops every managed thread until each one reaches a safe point, and with a
/// thousand vCPU threads spinning on two host cores that can take seconds (each needs its turn on a core); no managed
/// watchdog can run meanwhile. A thread the runtime does not know about is never suspended. The stub is ten
/// instructions assembled with Iced into an executable page (x86-64 Linux only; elsewhere the backstop is absent).</remarks>
static unsafe class NativeBackstop
{
    static byte* _block;

    public static void Arm(double seconds, string message)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || _block != null) return;
        try
        {
            var msg = Encoding.UTF8.GetBytes(message);
            // Data: [0] tv_sec, [8] tv_nsec (absolute CLOCK_MONOTONIC), [16] message, [24] length, [32] armed.
            byte* data = (byte*)NativeMemory.AllocZeroed((nuint)(64 + msg.Length));
            msg.CopyTo(new Span<byte>(data + 64, msg.Length));
            if (ClockGetTime(1, data) != 0) return;
            long ns = *(long*)(data + 8) + (long)(seconds * 1e9);
            *(long*)data += ns / 1_000_000_000;
            *(long*)(data + 8) = ns % 1_000_000_000;
            *(long*)(data + 16) = (long)(data + 64);
            *(long*)(data + 24) = msg.Length;
            *(long*)(data + 32) = 1;

            var a = new Assembler(64);
            Label retry = a.CreateLabel(), done = a.CreateLabel();
            a.push(rbx);
            a.mov(rbx, rdi);
            a.Label(ref retry);
            a.mov(eax, 230);            // clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)
            a.mov(edi, 1);
            a.mov(esi, 1);
            a.mov(rdx, rbx);
            a.xor(r10d, r10d);
            a.syscall();
            a.cmp(eax, -4);             // EINTR: sleep again
            a.je(retry);
            a.cmp(__qword_ptr[rbx + 32], 0);
            a.je(done);                 // disarmed: the command ended normally
            a.mov(eax, 1);              // write(2, message, length)
            a.mov(edi, 2);
            a.mov(rsi, __qword_ptr[rbx + 16]);
            a.mov(rdx, __qword_ptr[rbx + 24]);
            a.syscall();
            a.mov(eax, 231);            // exit_group(124)
            a.mov(edi, 124);
            a.syscall();
            a.Label(ref done);
            a.xor(eax, eax);
            a.pop(rbx);
            a.ret();
            const int ProtRw = 3, ProtRx = 5, MapPrivateAnon = 0x22;
            void* page = Mmap(null, 4096, ProtRw, MapPrivateAnon, -1, 0);
            if (page == (void*)-1) return;
            var code = CodeBytes.Assemble(a, (ulong)page);
            code.CopyTo(new Span<byte>(page, code.Length));
            if (Mprotect(page, 4096, ProtRx) != 0) return;
            nint tid;
            if (PthreadCreate(&tid, null, page, data) != 0) return;
            PthreadDetach(tid);
            _block = data;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    /// <summary>The command finished on its own: the backstop thread will wake and return without exiting.</summary>
    public static void Disarm()
    {
        if (_block != null) Volatile.Write(ref *(long*)(_block + 32), 0);
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int ClockGetTime(int clock, byte* ts);
    [DllImport("libc", EntryPoint = "mmap")]
    static extern void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", EntryPoint = "mprotect")]
    static extern int Mprotect(void* addr, nuint length, int prot);
    [DllImport("libc", EntryPoint = "pthread_create")]
    static extern int PthreadCreate(nint* thread, void* attr, void* start, void* arg);
    [DllImport("libc", EntryPoint = "pthread_detach")]
    static extern int PthreadDetach(nint thread);
}
