using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

/// <summary>Signature of every translated block: returns an exit code for the dispatcher.</summary>
public unsafe delegate int BlockFn(CpuCore core, CpuState* state);

/// <summary>
/// Tier-1 code of a <see cref="Block"/>. Chaining: each direct exit owns a native slot holding the
/// address of its successor's entry cell; the exit tail-calls through <c>**slot</c>. An unlinked slot
/// points at a shared cell whose code returns <see cref="ExitLink"/>, so the dispatcher links it.
/// Invalidating a block points its own entry cell at that code, unlinking every jump into it at once.
/// </summary>
public sealed unsafe class CompiledBlock
{
    /// <summary>Continue at CpuState.Rip through the dispatcher.</summary>
    public const int ExitDispatch = 0;
    /// <summary>As ExitDispatch, and CpuState.LastExitSlot is an unlinked slot to patch.</summary>
    public const int ExitLink = 1;
    /// <summary>Nothing ran: the code was compiled for flat segments and they are not flat now; interpret the block at RIP.</summary>
    public const int ExitInterpret = 2;

    public BlockFn Delegate { get; }
    /// <summary>Native cell holding this block's current entry point (its code, or the link stub once invalid).</summary>
    public nint* EntryCell { get; }
    readonly DynamicMethod _method; // keeps the code alive
    internal GCHandle[] BlockHandles = [];
    /// <summary>Blocks compiled into this method (1 = the block alone).</summary>
    public int RegionBlocks { get; init; } = 1;

    internal CompiledBlock(DynamicMethod method, BlockFn fn, nint entry)
    {
        _method = method;
        Delegate = fn;
        EntryCell = (nint*)NativeMemory.Alloc((nuint)sizeof(nint));
        *EntryCell = entry != 0 ? entry : LinkStubEntry;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Invoke(CpuCore core, CpuState* s)
    {
        nint fn = *EntryCell;
        return FunctionPointersAvailable && fn != LinkStubEntry ? ((delegate*<CpuCore, CpuState*, int>)fn)(core, s) : Delegate(core, s);
    }

    public void Unlink() => Volatile.Write(ref *EntryCell, LinkStubEntry);

    /// <summary>Points an exit slot at <paramref name="target"/>'s entry cell (a single aligned pointer store).</summary>
    public static void Link(nint slot, CompiledBlock target) => Volatile.Write(ref *(nint*)slot, (nint)target.EntryCell);

    /// <summary>Allocates an exit slot, initially unlinked.</summary>
    public static nint NewExitSlot()
    {
        nint* slot = (nint*)NativeMemory.Alloc((nuint)sizeof(nint));
        *slot = (nint)UnlinkedCell;
        return (nint)slot;
    }

    static int LinkStub(CpuCore core, CpuState* s) => ExitLink;

    /// <summary>Entry of the link stub; also the value of the shared unlinked cell.</summary>
    public static readonly nint LinkStubEntry = (nint)(delegate*<CpuCore, CpuState*, int>)&LinkStub;
    public static readonly nint* UnlinkedCell = NewCell(LinkStubEntry);

    static nint* NewCell(nint value)
    {
        nint* c = (nint*)NativeMemory.Alloc((nuint)sizeof(nint));
        *c = value;
        return c;
    }

    // A DynamicMethod's code address is reachable only through a non-public runtime member, so chaining
    // is guarded by a start-up self-test; without it every block returns to the dispatcher.
    static readonly MethodInfo? GetMethodDescriptor =
        typeof(DynamicMethod).GetMethod("GetMethodDescriptor", BindingFlags.NonPublic | BindingFlags.Instance);

    public static readonly bool FunctionPointersAvailable = SelfTest();

    internal static nint EntryOf(DynamicMethod m)
    {
        if (GetMethodDescriptor == null) return 0;
        try
        {
            var h = (RuntimeMethodHandle)GetMethodDescriptor.Invoke(m, null)!;
            RuntimeHelpers.PrepareMethod(h);
            return h.GetFunctionPointer();
        }
        catch (Exception) { return 0; }
    }

    static bool SelfTest()
    {
        try
        {
            var m = new DynamicMethod("selftest", typeof(int), [typeof(int)], typeof(CompiledBlock).Module, true);
            var il = m.GetILGenerator();
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4, 41);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Ret);
            m.CreateDelegate<Func<int, int>>();
            nint p = EntryOf(m);
            return p != 0 && ((delegate*<int, int>)p)(1) == 42;
        }
        catch (Exception) { return false; }
    }
}
