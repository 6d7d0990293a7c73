namespace DynaSmp.Jit.Cpu;

/// <summary>IA32_EFER bits (SDM Vol. 3A 2.2.1).</summary>
public static class Efer
{
    public const ulong SCE = 1 << 0, LME = 1 << 8, LMA = 1 << 10, NXE = 1 << 11;
}
