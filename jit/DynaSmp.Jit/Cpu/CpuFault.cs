namespace DynaSmp.Jit.Cpu;

/// <summary>A guest exception raised while executing an instruction. Thrown only on the slow path
/// (interpreter, memory slow path); translated code sees it as CpuState.PendingFault.</summary>
public sealed class CpuFault(int vector, ulong errorCode = 0) : Exception(Cpu.Vector.Name(vector))
{
    public int Vector { get; } = vector;
    public ulong ErrorCode { get; } = errorCode;

    public static CpuFault UD() => new(Cpu.Vector.UD);
    public static CpuFault GP(ulong error = 0) => new(Cpu.Vector.GP, error);
    public static CpuFault DE() => new(Cpu.Vector.DE);
}
