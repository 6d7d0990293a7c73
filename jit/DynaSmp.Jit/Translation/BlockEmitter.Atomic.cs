using System.Reflection.Emit;

namespace DynaSmp.Jit.Translation;

sealed unsafe partial class BlockEmitter
{
    LocalBuilder? _host;

    /// <summary>
    /// A locked read-modify-write of <paramref name="size"/> bytes at <see cref="Lin"/> (already computed). On a
    /// write-TLB hit, <paramref name="inline"/> gets the host address in a native local and performs the host
    /// atomic; it must not fault. Everything else - a miss, a fault, MMIO, an operand crossing a page, a page holding
    /// translations (never write-mapped) - runs the instruction through tier 0, which is exact for all of them.
    /// Flags are in CpuState after both paths, so the compile-time flag state agrees where they meet.
    /// </summary>
    internal void EmitAtomic(int size, Action<LocalBuilder> inline)
    {
        _host ??= Il.NewNativeLocal();
        EmitLimitCheck(size);
        Label miss = Il.Label(), cont = Il.Label();
        var (op, flagSize) = (_pending, _pendingSize);
        int bi = _bi, k = _k;
        EmitTlbEntry(StateOffsets.TlbWrite);
        EmitTlbCompare(size, miss);
        EmitHostAddress();
        Il.Gen.Emit(OpCodes.Stloc, _host);
        inline(_host);
        FlushPending();
        Il.BeforeJoin(cont, () =>
        {
            Il.Mark(miss);
            FlushFlags(op, flagSize);
            WriteBack();
            EmitInterpretCall(bi, k);
            ReloadUsed();
            Il.Emit(OpCodes.Br, cont);
        });
        Il.Mark(cont);
    }
}
