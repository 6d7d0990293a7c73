using System.Diagnostics;
using System.Text.Json;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Guests;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp trace`: boots one VM and prints every APIC event with the KVM path it took.</summary>
static class TraceCommand
{
    public static int Run(string[] args)
    {
        var a = new CliArgs(args, new HashSet<string> { "--cpus", "--chrome", "--ipi-delays", "--timeout" });
        a.ExpectPositionals(0, "dynasmp trace [--cpus M] [--chrome FILE] [--ipi-delays none|linux] [--timeout S]");
        int cpus = a.Int("--cpus", 2, 1, 64);
        string? chrome = a.String("--chrome");
        var delays = a.Choice("--ipi-delays", IpiDelays.None, ("none", IpiDelays.None), ("linux", IpiDelays.Linux));
        var deadline = new Deadline(a.Seconds("--timeout", 60));
        HostFiles.CheckOutput(chrome, "--chrome");
        long ceiling = Admission.Check(1, cpus, 64UL << 20, BootRun.TraceCapacity(cpus, true), 1 << 20, "", "--cpus");

        using var run = new BootRun(1, cpus, 64UL << 20, delays, trace: true, deadline);
        run.Start();
        run.WaitAll(deadline, ceiling, null);
        var pc = run.Pcs[0];
        var events = Events(pc.Vm);
        long t0 = events.Count > 0 ? events[0].Timestamp : 0;
        WriteTimeline(Console.Out, events, $"IPI timeline of one VM with {cpus} vCPUs (built-in guest, IPI delays {delays.ToString().ToLowerInvariant()}); times in us from the first event");
        Console.WriteLine();
        Console.WriteLine(Explanation);
        Console.WriteLine($"Guest result: {(BootRun.Succeeded(pc) ? "every CPU online" : $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage}")}");

        if (chrome != null) HostFiles.WriteOutput(chrome, "--chrome", f => WriteChromeTrace(f, events, t0, pc.Vm));
        var s = run.Summarize();
        return BootCommand.Status(run, s, cpus);
    }

    /// <summary>Every vCPU's recorded events, merged by timestamp.</summary>
    public static List<TraceEvent> Events(Vm vm) => vm.Vcpus.SelectMany(v => v.Trace.Snapshot()).OrderBy(e => e.Timestamp).ToList();

    /// <summary>One line per event: time, recording vCPU, route, ICR, delivery mode, trigger, mp_state change, KVM path.</summary>
    public static void WriteTimeline(TextWriter w, List<TraceEvent> events, string title)
    {
        long t0 = events.Count > 0 ? events[0].Timestamp : 0;
        w.WriteLine(title);
        w.WriteLine($"{"time",10}  {"on",-5} {"src->dst",-9} {"ICR",-10} {"delivery",-16} {"trig/level",-14} {"mp_state before -> after",-30} KVM path");
        foreach (var e in events)
        {
            double us = (e.Timestamp - t0) * 1e6 / Stopwatch.Frequency;
            string route = e.Target < 0 ? $"{e.Source}->*" : $"{e.Source}->{e.Target}";
            bool hasIcr = e.IcrLow != 0 || e.Path == KvmPath.IpiSent;
            var icr = new IcrWrite(e.IcrLow, e.Destination);
            string mode = hasIcr ? icr.Mode.ToString() + (icr.Mode == DeliveryMode.Startup ? $" 0x{icr.Vector:x2}" : "") : "";
            string trig = hasIcr ? $"{(icr.LevelTriggered ? "level" : "edge")}/{(icr.Level ? "assert" : "deassert")}" : "";
            string states = e.Target < 0 ? "" : $"{Name(e.Before)} -> {Name(e.After)}";
            w.WriteLine($"{us,10:F2}  cpu{e.Recorder,-2} {route,-9} {(hasIcr ? $"0x{e.IcrLow:x8}" : ""),-10} {mode,-16} {trig,-14} {states,-30} {KvmPathText.Describe(e.Path)}");
        }
    }

    static string Name(MpState s) => s switch
    {
        MpState.Runnable => "RUNNABLE",
        MpState.Uninitialized => "UNINITIALIZED",
        MpState.InitReceived => "INIT_RECEIVED",
        MpState.Halted => "HALTED",
        _ => s.ToString(),
    };

    const string Explanation = """
        Why INIT twice and SIPI twice (Linux's wakeup_secondary_cpu_via_init, kvm-semantics.md §7):
          - The BSP follows the MP-spec recipe INIT assert, INIT de-assert, STARTUP, STARTUP.
          - The first INIT (level-triggered, assert) replaces the AP's pending word with {INIT}; the AP's thread
            wakes, kvm_apic_accept_events resets it and it enters INIT_RECEIVED (wait-for-SIPI).
          - The second INIT is the de-assert (level-triggered, level 0). KVM ignores it in __apic_accept_irq:
            no pending bit, no kick, no effect. It only existed to resync arbitration IDs on P6-era APICs.
          - Hardware never retries a lost STARTUP, so software sends two. The first starts the AP in real mode at
            CS = vector << 8, IP = 0. The second finds it RUNNABLE: acceptance clears the SIPI bit and drops it
            (or, if the AP's thread had not run yet, the two SIPIs coalesce into one pending bit). Either way the AP
            is reset once and started once.
        """;

    /// <summary>Chrome trace-event JSON (Perfetto, chrome://tracing): one track per vCPU, instant events.</summary>
    static void WriteChromeTrace(Stream stream, List<TraceEvent> events, long t0, Vm vm)
    {
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false });
        w.WriteStartObject();
        w.WriteStartArray("traceEvents");
        foreach (var v in vm.Vcpus)
        {
            w.WriteStartObject();
            w.WriteString("name", "thread_name"); w.WriteString("ph", "M"); w.WriteNumber("pid", 1); w.WriteNumber("tid", v.Id);
            w.WriteStartObject("args"); w.WriteString("name", $"vCPU {v.Id}{(v.Id == vm.Config.BspId ? " (BSP)" : "")}"); w.WriteEndObject();
            w.WriteEndObject();
        }
        foreach (var e in events)
        {
            w.WriteStartObject();
            w.WriteString("name", e.Path.ToString());
            w.WriteString("cat", "apic");
            w.WriteString("ph", "i");
            w.WriteString("s", "t");
            w.WriteNumber("ts", (e.Timestamp - t0) * 1e6 / Stopwatch.Frequency);
            w.WriteNumber("pid", 1);
            w.WriteNumber("tid", e.Recorder);
            w.WriteStartObject("args");
            w.WriteNumber("source", e.Source);
            w.WriteNumber("target", e.Target);
            w.WriteString("icr", $"0x{e.IcrLow:x8}");
            w.WriteString("before", Name(e.Before));
            w.WriteString("after", Name(e.After));
            w.WriteString("kvm", KvmPathText.Describe(e.Path));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
