using System.Buffers.Binary;
using System.Diagnostics;
using DynaSmp.Jit.Memory;

namespace DynaSmp.Machine;

/// <summary>
/// kvm-clock (Documentation/virt/kvm/x86/msr.rst): MSR_KVM_WALL_CLOCK_NEW (4b564d00h) asks for the wall time at
/// system time 0 at a guest address; MSR_KVM_SYSTEM_TIME_NEW (4b564d01h) names a vCPU's pvclock_vcpu_time_info. Every
/// vCPU's TSC counts host Stopwatch ticks from the VM's one power-on, so one static record describes the clock
/// exactly: tsc_timestamp 0, system_time 0, and the scale from TSC ticks to nanoseconds, with PVCLOCK_TSC_STABLE_BIT
/// (the TSCs never drift apart). It never changes, so it is written once per MSR write.
/// </summary>
public static class KvmClock
{
    public const uint WallClockMsr = 0x4B56_4D00, SystemTimeMsr = 0x4B56_4D01;
    const byte TscStableBit = 1;

    /// <summary>tsc_to_system_mul and tsc_shift: ns = ((ticks &lt;&lt; shift) * mul) &gt;&gt; 32 (shift may be negative).</summary>
    public static (uint Mul, sbyte Shift) Scale(long ticksPerSecond)
    {
        int shift = 0;
        double ratio = 1e9 / ticksPerSecond; // ns per tick
        while (ratio >= 1.0) { ratio /= 2; shift++; }
        while (ratio < 0.5) { ratio *= 2; shift--; }
        return ((uint)(ratio * 4294967296.0), (sbyte)shift);
    }

    /// <summary>Writes pvclock_vcpu_time_info at <paramref name="gpa"/> (false if it is not in RAM).</summary>
    public static bool WriteTimeInfo(GuestRam ram, ulong gpa)
    {
        if (!ram.Contains(gpa, 32)) return false;
        var (mul, shift) = Scale(Stopwatch.Frequency);
        Span<byte> r = stackalloc byte[32];
        r.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(r, 2);          // version: even = consistent
        BinaryPrimitives.WriteUInt32LittleEndian(r[24..], mul);
        r[28] = (byte)shift;
        r[29] = TscStableBit;
        ram.Write(gpa, r);
        return true;
    }

    /// <summary>Writes pvclock_wall_clock at <paramref name="gpa"/>: the UTC time when the TSC (system time) was 0.</summary>
    public static bool WriteWallClock(GuestRam ram, ulong gpa, ulong tscNow)
    {
        if (!ram.Contains(gpa, 12)) return false;
        long nowNs = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        long bootNs = nowNs - (long)(tscNow * (1e9 / Stopwatch.Frequency));
        Span<byte> r = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(r, 2);
        BinaryPrimitives.WriteUInt32LittleEndian(r[4..], (uint)(bootNs / 1_000_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(r[8..], (uint)(bootNs % 1_000_000_000));
        ram.Write(gpa, r);
        return true;
    }
}
