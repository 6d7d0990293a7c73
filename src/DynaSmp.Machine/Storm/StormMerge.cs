namespace DynaSmp.Machine.Storm;

/// <summary>`dynasmp merge`: shard reports of one storm into one report. Counts add, percentiles are recomputed from
/// the merged latency bins (never averaged), failures keep their VM and seed, and the wall time is the longest shard's
/// (shards run side by side).</summary>
public static class StormMerge
{
    public static StormReport Merge(IReadOnlyList<StormReport> shards)
    {
        if (shards.Count == 0) throw new ArgumentException("nothing to merge");
        var c = shards[0].Config;
        foreach (var s in shards)
            if (s.Config.Vms != c.Vms || s.Config.Cpus != c.Cpus || s.Config.Seed != c.Seed || s.Config.Deterministic != c.Deterministic || s.Config.X2Apic != c.X2Apic)
                throw new ArgumentException($"shard {s.Shard} comes from another storm (vms/cpus/seed/mode differ from shard {shards[0].Shard})");
        var m = new StormReport { Config = c, Shard = $"merged {shards.Count}" };
        var seen = new HashSet<int>();
        var latency = new SortedDictionary<string, LatencyHistogram>();
        foreach (var s in shards)
        {
            foreach (var r in s.VmResults)
                if (!seen.Add(r.Vm)) throw new ArgumentException($"vm {r.Vm} appears in two shards (overlapping --shard values?)");
            m.VmsRun += s.VmsRun;
            m.WallSeconds = Math.Max(m.WallSeconds, s.WallSeconds);
            m.Events += s.Events;
            m.Turns += s.Turns;
            m.SteadyStateAllocatedBytes += s.SteadyStateAllocatedBytes;
            m.SteadyStateTranslationBytes += s.SteadyStateTranslationBytes;
            m.HostResources ??= s.HostResources;
            foreach (var (k, n) in s.EventsByType) m.EventsByType[k] = m.EventsByType.GetValueOrDefault(k) + n;
            foreach (var (k, l) in s.Latency)
            {
                if (!latency.TryGetValue(k, out var h)) latency[k] = h = new LatencyHistogram();
                h.Add(LatencyHistogram.FromSparse(l.Bins));
            }
            m.Failures.AddRange(s.Failures);
            m.VmResults.AddRange(s.VmResults);
        }
        m.VmResults.Sort((a, b) => a.Vm.CompareTo(b.Vm));
        m.Failures.Sort((a, b) => a.Vm.CompareTo(b.Vm));
        m.EventsPerSecond = m.WallSeconds > 0 ? m.Events / m.WallSeconds : 0;
        double ticksPerNs = c.Deterministic ? 1 : System.Diagnostics.Stopwatch.Frequency / 1e9;
        foreach (var (k, h) in latency) m.Latency[k] = LatencySummary.Of(h, ticksPerNs);
        return m;
    }
}
