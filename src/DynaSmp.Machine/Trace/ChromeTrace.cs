using System.Text.Json;

namespace DynaSmp.Machine.Trace;

/// <summary>Chrome trace-event JSON (Perfetto, chrome://tracing): one track per vCPU (and extra named tracks),
/// instant events with the KVM path, times in microseconds from the first event.</summary>
public static class ChromeTrace
{
    public static void Write(Stream stream, IReadOnlyList<TraceEvent> events, Vm vm, IReadOnlyDictionary<int, string>? extraTracks = null)
    {
        long t0 = events.Count > 0 ? events[0].Timestamp : 0;
        double frequency = vm.Clock.Frequency;
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        w.WriteStartObject();
        w.WriteStartArray("traceEvents");
        void Track(int tid, string name)
        {
            w.WriteStartObject();
            w.WriteString("name", "thread_name"); w.WriteString("ph", "M"); w.WriteNumber("pid", 1); w.WriteNumber("tid", tid);
            w.WriteStartObject("args"); w.WriteString("name", name); w.WriteEndObject();
            w.WriteEndObject();
        }
        foreach (var v in vm.Vcpus) Track(v.Id, $"vCPU {v.Id}{(v.Id == vm.Config.BspId ? " (BSP)" : "")}");
        if (extraTracks != null) foreach (var (tid, name) in extraTracks) Track(tid, name);
        foreach (var e in events)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Path.ToString());
            w.WriteString("cat", "apic");
            w.WriteString("ph", "i");
            w.WriteString("s", "t");
            w.WriteNumber("ts", (e.Timestamp - t0) * 1e6 / frequency);
            w.WriteNumber("pid", 1);
            w.WriteNumber("tid", e.Recorder);
            w.WriteStartObject("args");
            w.WriteNumber("source", e.Source);
            w.WriteNumber("target", e.Target);
            w.WriteString("icr", $"0x{e.IcrLow:x8}");
            w.WriteString("before", TraceText.MpStateName(e.Before));
            w.WriteString("after", TraceText.MpStateName(e.After));
            w.WriteString("kvm", KvmPathText.Describe(e.Path));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
