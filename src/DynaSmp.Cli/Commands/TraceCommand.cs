using System.CommandLine;
using System.Diagnostics;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Guests;
using DynaSmp.Machine.Trace;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp trace`: boots one VM and prints every APIC event with the KVM path it took.</summary>
static class TraceCommand
{
    public static Command Create()
    {
        var cpus = CliOptions.Int("--cpus", 2, 1, 64, "vCPUs");
        var chrome = CliOptions.OutputFile("--chrome", "write the timeline as Chrome/Perfetto trace-event JSON");
        var delays = CliOptions.IpiDelays();
        var timeout = CliOptions.Seconds("--timeout", 60, "deadline for set-up, run and tear-down");
        var c = new Command("trace", "boot one VM and print its IPI timeline with the KVM path of every event") { cpus, chrome, delays, timeout };
        c.SetAction(p => Run(p.GetValue(cpus), p.GetValue(chrome), p.GetValue(delays).Value, p.GetValue(timeout)));
        return c;
    }

    static int Run(int cpus, string? chrome, IpiDelays delays, double timeout)
    {
        var deadline = new Deadline(timeout);
        HostFiles.CheckOutput(chrome, "--chrome");
        long ceiling = Admission.Check(1, cpus, 64UL << 20, BootRun.TraceCapacity(cpus, true), 1 << 20, "", "--cpus");

        using var run = new BootRun(1, cpus, 64UL << 20, delays, trace: true, deadline);
        run.Start(window: 1);
        run.WaitAll(deadline, ceiling, null);
        var pc = run.Pcs[0];
        var events = Events(pc.Vm);
        long t0 = events.Count > 0 ? events[0].Timestamp : 0;
        WriteTimeline(Console.Out, events, pc.Vm.Clock.Frequency, $"IPI timeline of one VM with {cpus} vCPUs (built-in guest, IPI delays {delays.ToString().ToLowerInvariant()}); times in us from the first event");
        Console.WriteLine();
        Console.WriteLine(Explanation);
        Console.WriteLine($"Guest result: {(run.Succeeded(pc) ? "every CPU online" : $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage}")}");

        if (chrome != null) HostFiles.WriteOutput(chrome, "--chrome", f => ChromeTrace.Write(f, events, pc.Vm));
        var s = run.Summarize();
        return BootCommand.Status(run, s, cpus);
    }

    /// <summary>Every vCPU's recorded events, merged by timestamp.</summary>
    public static List<TraceEvent> Events(Vm vm) => vm.Vcpus.SelectMany(v => v.Trace.Snapshot()).OrderBy(e => e.Timestamp).ToList();

    /// <summary>One line per event: time, recording vCPU, route, ICR, delivery mode, trigger, mp_state change, KVM path.</summary>
    public static void WriteTimeline(TextWriter w, List<TraceEvent> events, double ticksPerSecond, string title)
    {
        long t0 = events.Count > 0 ? events[0].Timestamp : 0;
        w.WriteLine(title);
        w.WriteLine($"{"time",10}  {"on",-5} {"src->dst",-9} {"ICR",-10} {"delivery",-16} {"trig/level",-14} {"mp_state before -> after",-30} KVM path");
        foreach (var e in events)
        {
            double us = (e.Timestamp - t0) * 1e6 / ticksPerSecond;
            string route = e.Target < 0 ? $"{e.Source}->*" : $"{e.Source}->{e.Target}";
            bool hasIcr = e.IcrLow != 0 || e.Path == KvmPath.IpiSent;
            var icr = new IcrWrite(e.IcrLow, e.Destination);
            string mode = hasIcr ? icr.Mode.ToString() + (icr.Mode == DeliveryMode.Startup ? $" 0x{icr.Vector:x2}" : "") : "";
            string trig = hasIcr ? $"{(icr.LevelTriggered ? "level" : "edge")}/{(icr.Level ? "assert" : "deassert")}" : "";
            string states = e.Target < 0 ? "" : $"{TraceText.MpStateName(e.Before)} -> {TraceText.MpStateName(e.After)}";
            w.WriteLine($"{us,10:F2}  cpu{e.Recorder,-2} {route,-9} {(hasIcr ? $"0x{e.IcrLow:x8}" : ""),-10} {mode,-16} {trig,-14} {states,-30} {KvmPathText.Describe(e.Path)}");
        }
    }


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
}
