using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Translation;

/// <summary>Signature of every translated block: returns an exit code for the dispatcher.</summary>
public unsafe delegate int BlockFn(CpuCore core, CpuState* state);

/// <summary>
/// One VM's use of tier-1 code (<see cref="SharedCode"/>, which every VM running the same instructions shares).
/// Chaining: each direct exit of the code owns a slot in this block's own <see cref="Slots"/> array, holding the
/// address of its successor's entry cell; entering a block stores its slot array in CpuState.ExitSlots, and an exit
/// tail-calls through <c>**slot</c>. An entry cell is two words, the code address and the block's slot array, so a
/// chained jump carries the successor's slots with it. An unlinked slot points at a shared cell whose code returns
/// <see cref="ExitLink"/>, so the dispatcher links it. Invalidating a block points its own entry cell at that code,
/// unlinking every jump into it at once (in this VM only: the other VMs' blocks have their own cells).
/// </summary>
public sealed unsafe class CompiledBlock
{
    /// <summary>Continue at CpuState.Rip through the dispatcher.</summary>
    public const int ExitDispatch = 0;
    /// <summary>As ExitDispatch, and CpuState.LastExitSlot is an unlinked slot to patch.</summary>
    public const int ExitLink = 1;
    /// <summary>Nothing ran: the segments fail the code's entry guard (not flat for flat code, or attributes segmented
    /// code does not handle); interpret the block at RIP.</summary>
    public const int ExitInterpret = 2;
    /// <summary>Nothing ran: a lean region's entry countdown ran out; the dispatcher asks for its full region
    /// (<see cref="TierUp.Promote"/>) and enters it again.</summary>
    public const int ExitPromote = 3;

    /// <summary>Entries of a lean region before it asks for its full region: a loop split across lean regions gets
    /// there within milliseconds, most boot code never.</summary>
    public const long PromoteAfter = 4096;

    public SharedCode Code { get; }
    public BlockFn Delegate => Code.Delegate;
    /// <summary>Native cell: [0] this block's current entry point (its code, or the link stub once invalid), [1] its
    /// slot array. Never freed: slots of other blocks may point here after this object is gone.</summary>
    public nint* EntryCell { get; }
    /// <summary>This VM's exit slots for the code's direct exits. The word before the first is the entry countdown of
    /// counted code (<see cref="SharedCode.Counted"/>).</summary>
    public nint* Slots { get; }
    /// <summary>Blocks compiled into this method (1 = the block alone).</summary>
    public int RegionBlocks => Code.RegionBlocks;

    internal CompiledBlock(SharedCode code)
    {
        Code = code;
        Slots = (nint*)NativeMemory.Alloc((nuint)((code.ExitSlots + 1) * sizeof(nint))) + 1;
        Slots[-1] = code.Counted ? (nint)PromoteAfter : nint.MaxValue;
        for (int k = 0; k < code.ExitSlots; k++) Slots[k] = (nint)UnlinkedCell;
        EntryCell = NewCell(code.Entry != 0 ? code.Entry : LinkStubEntry, (nint)Slots);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Invoke(CpuCore core, CpuState* s)
    {
        nint fn = *EntryCell;
        s->ExitSlots = (nint)Slots;
        return FunctionPointersAvailable && fn != LinkStubEntry ? ((delegate*<CpuCore, CpuState*, int>)fn)(core, s) : Delegate(core, s);
    }

    public void Unlink() => Volatile.Write(ref *EntryCell, LinkStubEntry);

    /// <summary>Stops the entry countdown (the promotion is asked for, or refused).</summary>
    public void StopCountdown() => Slots[-1] = nint.MaxValue;

    /// <summary>Points an exit slot at <paramref name="target"/>'s entry cell (a single aligned pointer store).</summary>
    public static void Link(nint slot, CompiledBlock target) => Volatile.Write(ref *(nint*)slot, (nint)target.EntryCell);

    static int LinkStub(CpuCore core, CpuState* s) => ExitLink;

    /// <summary>Entry of the link stub; also the code word of the shared unlinked cell.</summary>
    public static readonly nint LinkStubEntry = (nint)(delegate*<CpuCore, CpuState*, int>)&LinkStub;
    public static readonly nint* UnlinkedCell = NewCell(LinkStubEntry, 0);

    static nint* NewCell(nint code, nint slots)
    {
        nint* c = (nint*)NativeMemory.Alloc((nuint)(2 * sizeof(nint)));
        c[0] = code;
        c[1] = slots;
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
