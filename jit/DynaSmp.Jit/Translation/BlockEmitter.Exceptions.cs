using System.Reflection.Emit;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Translation;

sealed unsafe partial class BlockEmitter
{
    /// <summary>An out-of-line exit raising exception <paramref name="vector"/> (no error code) for the current
    /// instruction, which must not have changed anything yet: the guest state is left as before it (precise).</summary>
    internal Label RaiseException(int vector)
    {
        var raise = Il.Label();
        var fault = FaultExit();
        _outOfLine.Add(() =>
        {
            Il.Mark(raise);
            Il.StateAddress(StateOffsets.PendingFault); Il.ConstI4(vector + 1); Il.Emit(OpCodes.Stind_I4);
            Il.StoreState64Const(StateOffsets.PendingErrorCode, 0);
            Il.Emit(OpCodes.Br, fault);
        });
        return raise;
    }
}
