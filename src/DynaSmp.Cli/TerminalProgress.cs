using System.Diagnostics;
using DynaSmp.Machine;

namespace DynaSmp.Cli;

/// <summary>
/// One self-overwriting status line on stderr (VMs finished, vCPUs started, guest instructions) for runs that last
/// longer than a second. Silent when stderr is not a terminal or the caller asked for machine output (--json), so logs
/// and pipes never see it. Driven from the supervisor's poll loop: no thread of its own.
/// </summary>
sealed class TerminalProgress(IReadOnlyList<Vm> vms, bool enabled)
{
    static readonly long ShowAfter = Stopwatch.Frequency, Every = Stopwatch.Frequency / 5;
    readonly long _start = Stopwatch.GetTimestamp();
    long _next;
    int _width;

    public static bool Wanted(bool machineOutput) => !machineOutput && !Console.IsErrorRedirected;

    public void Tick()
    {
        if (!enabled) return;
        long now = Stopwatch.GetTimestamp();
        if (now - _start < ShowAfter || now < _next) return;
        _next = now + Every;
        int finished = 0, started = 0, total = 0;
        ulong retired = 0;
        foreach (var vm in vms)
        {
            if (vm.StopRequested) finished++;
            foreach (var v in vm.Vcpus)
            {
                total++;
                if (v.Id == vm.Config.BspId || v.SipiStarts > 0) started++;
                retired += v.Retired;
            }
        }
        string line = $"  {(now - _start) / (double)Stopwatch.Frequency,6:F1} s  VMs finished {finished}/{vms.Count}  vCPUs online {started}/{total}  guest instructions {retired:N0}";
        _width = Math.Max(_width, line.Length);
        Console.Error.Write("\r" + line.PadRight(_width));
    }

    /// <summary>Erases the line (if one was drawn) so the summary starts on a clean line.</summary>
    public void Clear()
    {
        if (_width > 0) Console.Error.Write("\r" + new string(' ', _width) + "\r");
        _width = 0;
    }
}
