using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

public static unsafe partial class Interp
{
    /// <summary>Instruction groups that live in their own files (one file per group, each owning its
    /// own switch). Returns false when no group implements the instruction: the caller raises #UD.</summary>
    static bool TryExecuteGroup(CpuCore c, in Instruction i) =>
        TryExecuteShift(c, i)
        || TryExecuteMulDiv(c, i)
        || TryExecuteBits(c, i)
        || TryExecuteString(c, i)
        || TryExecuteExchange(c, i)
        || TryExecuteBcd(c, i)
        || TryExecuteSse(c, i)
        || TryExecuteSegments(c, i)
        || TryExecuteFarTransfer(c, i)
        || TryExecuteSyscall(c, i)
        || TryExecuteSystem(c, i)
        || TryExecuteX87(c, i)
        || TryExecuteLegacy(c, i);
}
