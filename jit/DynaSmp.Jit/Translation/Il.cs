using System.Reflection;
using System.Reflection.Emit;

namespace DynaSmp.Jit.Translation;

/// <summary>A 64-bit IL local holding a guest value.</summary>
readonly struct Local64(LocalBuilder slot)
{
    public LocalBuilder Slot { get; } = slot;
}

/// <summary>
/// Typed wrapper over ILGenerator (Sigil is not available here): every guest value on the IL stack is a
/// 64-bit integer, so stack discipline lives in these few methods rather than in each emitter.
/// </summary>
sealed class Il(ILGenerator g)
{
    public ILGenerator Gen => g;

    public Local64 NewLocal() => new(g.DeclareLocal(typeof(ulong)));
    public LocalBuilder NewNativeLocal() => g.DeclareLocal(typeof(nint));
    public LocalBuilder NewIntLocal() => g.DeclareLocal(typeof(int));
    /// <summary>A local of a value type a called method returns (a tuple), read back field by field.</summary>
    public LocalBuilder NewStructLocal(Type t) => g.DeclareLocal(t);
    public Label Label() => g.DefineLabel();

    /// <summary>Marks <paramref name="l"/>, first emitting the slow paths that rejoin the main line there
    /// (<see cref="BeforeJoin"/>) behind a branch over them.</summary>
    public void Mark(Label l)
    {
        if (_joining is { Count: > 0 }) EmitJoining(l);
        g.MarkLabel(l);
    }

    // PERF: a slow path that goes back to the main line is emitted just before the label it rejoins, so the branches
    // into and out of it both go forward. Emitted at the method's end, its branch back made RyuJIT take about 250 us
    // more per method (a 4-instruction block with one load: 640 -> 390 us, in-process A/B), and most regions have one.
    List<(Label Join, Action Body)>? _joining;

    /// <summary>Emits <paramref name="body"/> (code that ends in a branch to <paramref name="join"/>) where
    /// <paramref name="join"/> is marked; if it never is, with the method's other out-of-line code
    /// (<see cref="EmitPendingJoins"/>).</summary>
    public void BeforeJoin(Label join, Action body) => (_joining ??= new()).Add((join, body));

    void EmitJoining(Label l)
    {
        var pending = _joining!;
        bool branched = false;
        for (int n = 0; n < pending.Count;)
        {
            if (pending[n].Join != l) { n++; continue; }
            var body = pending[n].Body;
            pending.RemoveAt(n);
            if (!branched) { g.Emit(OpCodes.Br, l); branched = true; }
            body(); // may mark labels of its own, and so change the list: scan again
            n = 0;
        }
    }

    /// <summary>Emits the slow paths whose join label was marked before they were registered (out of line, as a last
    /// resort: correct, only slower to compile).</summary>
    public void EmitPendingJoins()
    {
        while (_joining is { Count: > 0 })
        {
            var body = _joining[^1].Body;
            _joining.RemoveAt(_joining.Count - 1);
            body();
        }
    }

    public void Load(Local64 x) => g.Emit(OpCodes.Ldloc, x.Slot);
    public void Store(Local64 x) => g.Emit(OpCodes.Stloc, x.Slot);
    public void Const(ulong v) => g.Emit(OpCodes.Ldc_I8, (long)v);
    public void ConstI4(int v) => g.Emit(OpCodes.Ldc_I4, v);
    public void Emit(OpCode op) => g.Emit(op);
    public void Emit(OpCode op, Label l) => g.Emit(op, l);
    public void Call(MethodInfo m) => g.Emit(OpCodes.Call, m);

    /// <summary>Masks the 64-bit value on the stack to <paramref name="size"/> bytes (zero-extended).</summary>
    public void Truncate(int size)
    {
        switch (size)
        {
            case 1: g.Emit(OpCodes.Conv_U1); g.Emit(OpCodes.Conv_U8); break;
            case 2: g.Emit(OpCodes.Conv_U2); g.Emit(OpCodes.Conv_U8); break;
            case 4: g.Emit(OpCodes.Conv_U4); g.Emit(OpCodes.Conv_U8); break;
        }
    }

    /// <summary>Sign-extends the low <paramref name="size"/> bytes of the value on the stack to 64 bits.</summary>
    public void SignExtend(int size)
    {
        switch (size)
        {
            case 1: g.Emit(OpCodes.Conv_I1); g.Emit(OpCodes.Conv_I8); break;
            case 2: g.Emit(OpCodes.Conv_I2); g.Emit(OpCodes.Conv_I8); break;
            case 4: g.Emit(OpCodes.Conv_I4); g.Emit(OpCodes.Conv_I8); break;
        }
    }

    /// <summary>Pushes the address CpuState + offset (arg 1 is the CpuState pointer).</summary>
    public void StateAddress(int offset)
    {
        g.Emit(OpCodes.Ldarg_1);
        if (offset != 0) { g.Emit(OpCodes.Ldc_I4, offset); g.Emit(OpCodes.Add); }
    }

    public void LoadState64(int offset) { StateAddress(offset); g.Emit(OpCodes.Ldind_I8); }
    public void LoadState32(int offset) { StateAddress(offset); g.Emit(OpCodes.Ldind_I4); }

    public void StoreState64(int offset, Local64 v) { StateAddress(offset); Load(v); g.Emit(OpCodes.Stind_I8); }
    public void StoreState64Const(int offset, ulong v) { StateAddress(offset); Const(v); g.Emit(OpCodes.Stind_I8); }
    public void StoreState32Const(int offset, int v) { StateAddress(offset); ConstI4(v); g.Emit(OpCodes.Stind_I4); }

    /// <summary>Guest memory load of <paramref name="size"/> bytes from the host address on the stack, zero-extended.</summary>
    public void LoadHost(int size)
    {
        g.Emit(OpCodes.Volatile);
        g.Emit(size switch { 1 => OpCodes.Ldind_U1, 2 => OpCodes.Ldind_U2, 4 => OpCodes.Ldind_U4, _ => OpCodes.Ldind_I8 });
        if (size < 8) g.Emit(OpCodes.Conv_U8);
    }

    /// <summary>Guest memory store: stack holds host address, then the 64-bit value.</summary>
    public void StoreHost(int size)
    {
        if (size < 8) g.Emit(size == 4 ? OpCodes.Conv_U4 : size == 2 ? OpCodes.Conv_U2 : OpCodes.Conv_U1);
        g.Emit(OpCodes.Volatile);
        g.Emit(size switch { 1 => OpCodes.Stind_I1, 2 => OpCodes.Stind_I2, 4 => OpCodes.Stind_I4, _ => OpCodes.Stind_I8 });
    }
}
