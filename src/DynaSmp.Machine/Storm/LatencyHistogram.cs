using System.Numerics;

namespace DynaSmp.Machine.Storm;

/// <summary>
/// Log-linear latency histogram: 16 bins per power of two (bucket width ~4.4%), preallocated, recorded with one
/// Interlocked increment from any thread. Histograms add bin by bin, so shard results merge into the same percentiles
/// a single run would give.
/// </summary>
public sealed class LatencyHistogram
{
    public const int Bins = 64 * 16;
    public readonly long[] Counts = new long[Bins];

    public static int Bin(long ticks)
    {
        if (ticks <= 0) return 0;
        ulong x = (ulong)ticks;
        int msb = BitOperations.Log2(x);
        int frac = msb >= 4 ? (int)((x >> (msb - 4)) & 15) : (int)((x << (4 - msb)) & 15);
        return msb * 16 + frac;
    }

    /// <summary>The smallest value that falls in bin <paramref name="bin"/>.</summary>
    public static double LowerBound(int bin)
    {
        int msb = bin / 16, frac = bin % 16;
        return Math.Pow(2, msb) * (16 + frac) / 16.0;
    }

    public void Record(long ticks) => Interlocked.Increment(ref Counts[Bin(ticks)]);

    public long Total { get { long n = 0; foreach (var c in Counts) n += c; return n; } }

    /// <summary>The <paramref name="p"/>-quantile (0..1) as its bin's lower bound; 0 when empty.</summary>
    public double Percentile(double p)
    {
        long total = Total;
        if (total == 0) return 0;
        long rank = Math.Max(1, (long)Math.Ceiling(p * total)), seen = 0;
        for (int b = 0; b < Bins; b++)
        {
            seen += Counts[b];
            if (seen >= rank) return LowerBound(b);
        }
        return LowerBound(Bins - 1);
    }

    public void Add(LatencyHistogram other)
    {
        for (int b = 0; b < Bins; b++) Counts[b] += other.Counts[b];
    }

    /// <summary>Non-empty bins as [bin, count] pairs (the JSON form).</summary>
    public List<long[]> Sparse()
    {
        var list = new List<long[]>();
        for (int b = 0; b < Bins; b++) if (Counts[b] != 0) list.Add([b, Counts[b]]);
        return list;
    }

    public static LatencyHistogram FromSparse(IEnumerable<long[]>? pairs)
    {
        var h = new LatencyHistogram();
        if (pairs != null)
            foreach (var p in pairs)
            {
                if (p.Length != 2 || p[0] < 0 || p[0] >= Bins || p[1] < 0) throw new FormatException("latency bins must be [bin, count] pairs with 0 <= bin < 1024");
                h.Counts[p[0]] += p[1];
            }
        return h;
    }
}
