namespace DynaSmp.Jit.Cpu;

/// <summary>A guest exception raised while executing an instruction. Thrown only on the slow path
/// (interpreter, memory slow path); translated code sees it as CpuState.PendingFault.</summary>
public sealed class CpuFault(int vector, ulong errorCode = 0) : Exception(Cpu.Vector.Name(vector))
{
    public int Vector { get; } = vector;
    public ulong ErrorCode { get; } = errorCode;
    /// <summary>A trap reports RIP after the instruction (the instruction completed); a fault, RIP at it.</summary>
    public bool IsTrap { get; init; }

    public static CpuFault UD() => new(Cpu.Vector.UD);
    public static CpuFault GP(ulong error = 0) => new(Cpu.Vector.GP, error);
    public static CpuFault SS(ulong error = 0) => new(Cpu.Vector.SS, error);
    public static CpuFault DE() => new(Cpu.Vector.DE);
}
