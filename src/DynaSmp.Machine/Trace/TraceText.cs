using System.Globalization;
using DynaSmp.Machine.Apic;

namespace DynaSmp.Machine.Trace;

/// <summary>One canonical text line per trace event: what replay checks compare byte for byte and what storm
/// failure reports print. Invariant culture, raw clock ticks, no host-dependent formatting.</summary>
public static class TraceText
{
    public static string MpStateName(MpState s) => s switch
    {
        MpState.Runnable => "RUNNABLE",
        MpState.Uninitialized => "UNINITIALIZED",
        MpState.InitReceived => "INIT_RECEIVED",
        MpState.Halted => "HALTED",
        MpState.SipiReceived => "SIPI_RECEIVED",
        _ => s.ToString(),
    };

    /// <summary>Every retained event of every vCPU, ordered by clock time (stable: ties keep vCPU and ring order).</summary>
    public static List<TraceEvent> Merged(Vm vm)
    {
        var all = new List<TraceEvent>();
        foreach (var v in vm.Vcpus) all.AddRange(v.Trace.Snapshot());
        return all.OrderBy(e => e.Timestamp).ToList();
    }

    public static string Line(in TraceEvent e)
    {
        string route = e.Target < 0 ? $"{e.Source}->*" : $"{e.Source}->{e.Target}";
        string icr = e.IcrLow != 0 || e.Path == KvmPath.IpiSent ? new IcrWrite(e.IcrLow, e.Destination).ToString() : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{e.Timestamp} cpu{e.Recorder} {route} {e.Path} 0x{e.IcrLow:x8}/0x{e.Destination:x} [{icr}] {MpStateName(e.Before)}->{MpStateName(e.After)}");
    }

    public static void Write(TextWriter w, IEnumerable<TraceEvent> events)
    {
        foreach (var e in events) w.WriteLine(Line(e));
    }
}
