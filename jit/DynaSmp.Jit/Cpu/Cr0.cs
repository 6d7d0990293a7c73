namespace DynaSmp.Jit.Cpu;

/// <summary>CR0 bits (Intel SDM 2.5).</summary>
public static class Cr0
{
    public const ulong PE = 1 << 0, MP = 1 << 1, EM = 1 << 2, TS = 1 << 3, ET = 1 << 4, NE = 1 << 5,
        WP = 1 << 16, AM = 1 << 18, NW = 1 << 29, CD = 1 << 30, PG = 1UL << 31;
}
