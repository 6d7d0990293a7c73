using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>Tier-1 code shared between VMs (SharedTranslations): VMs that decode the same instructions run one
/// method, and each VM still chains to its own successors and invalidates only its own blocks.</summary>
public unsafe class SharedTranslationTests
{
    const ulong A = 0x10_000, B = 0x10_100;

    static byte[] Assemble(ulong at, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        return CodeBytes.Assemble(a, at);
    }

    /// <summary>One guest-physical space with block A (mov eax, 5; jmp B) and block B (add eax, addend; hlt): the
    /// same A in every VM, a different B.</summary>
    sealed class Vm : IDisposable
    {
        public readonly GuestRam Ram = new(1 << 20);
        public readonly BlockCache Cache;
        public readonly CpuCore Cpu;

        public Vm(int addend)
        {
            Ram.Write(A, Assemble(A, a => { a.mov(eax, 5); a.jmp(B); }));
            Ram.Write(B, Assemble(B, a => { a.add(eax, addend); a.hlt(); }));
            Cache = new BlockCache(Ram);
            Cpu = new CpuCore(Ram, EmptyBus.Instance, Cache, JitOptions.CompileFirst);
        }

        /// <summary>Runs A to the HLT in B; returns EAX.</summary>
        public uint Run()
        {
            Cpu.SetFlat64(A, 0x8000);
            Assert.Equal(ExitReason.Hlt, Cpu.Run(1000));
            return (uint)Cpu.State->Gpr[0];
        }

        public CompiledBlock? Compiled(ulong rip) => Cache.Find(rip, Cpu.State->Mode, 0, rip)?.Compiled;

        public void Dispose() { Cpu.Dispose(); Ram.Dispose(); }
    }

    [Fact]
    public void Vms_share_the_code_of_identical_blocks_and_chain_to_their_own_successors()
    {
        Assert.True(SharedTranslations.Enabled);
        using var one = new Vm(1);
        using var two = new Vm(100);
        // Three runs each: the first decodes and compiles B, the second links A's exit slot to B, the third takes the
        // chained jump. Were the slot shared with the code, VM two would jump into VM one's B (and get 6).
        for (int k = 0; k < 3; k++) Assert.Equal(6u, one.Run());
        for (int k = 0; k < 3; k++) Assert.Equal(105u, two.Run());
        Assert.Equal(6u, one.Run());

        var a1 = one.Compiled(A)!; var a2 = two.Compiled(A)!;
        Assert.Same(a1.Code, a2.Code);                        // A compiled once for both VMs
        Assert.NotEqual((nint)a1.EntryCell, (nint)a2.EntryCell); // each with its own entry cell and slots
        Assert.NotEqual((nint)a1.Slots, (nint)a2.Slots);
        Assert.NotSame(one.Compiled(B)!.Code, two.Compiled(B)!.Code); // different instructions, different code
        if (CompiledBlock.FunctionPointersAvailable)
        {
            // Each VM's A slot is linked to its own B's entry cell.
            Assert.Equal((nint)one.Compiled(B)!.EntryCell, a1.Slots[0]);
            Assert.Equal((nint)two.Compiled(B)!.EntryCell, a2.Slots[0]);
        }
    }

    [Fact]
    public void Modifying_shared_code_in_one_vm_leaves_the_other_vm_running_the_old_code()
    {
        using var one = new Vm(1);
        using var two = new Vm(1);
        for (int k = 0; k < 3; k++) { Assert.Equal(6u, one.Run()); Assert.Equal(6u, two.Run()); }
        Assert.Same(one.Compiled(A)!.Code, two.Compiled(A)!.Code);
        // VM one rewrites A's immediate (as a guest store would: through the code-page invalidation).
        one.Ram.Write(A, Assemble(A, a => { a.mov(eax, 7); a.jmp(B); }));
        one.Cache.InvalidatePage(A >> GuestRam.PageShift);
        for (int k = 0; k < 3; k++) { Assert.Equal(8u, one.Run()); Assert.Equal(6u, two.Run()); }
        Assert.NotSame(one.Compiled(A)!.Code, two.Compiled(A)!.Code);
    }

    /// <summary>A VM's blocks and code can be collected once the VM is gone: translated code reaches only BlockCode
    /// objects through its handles. (Handles to the Blocks themselves kept every compiled block of every past guest
    /// alive: a 100,000-seed fuzz run grew to 18 GiB and was OOM-killed.)</summary>
    [Fact]
    public void A_disposed_vms_compiled_blocks_are_collectable()
    {
        var (block, cache) = CompileInThrowawayVm();
        for (int k = 0; k < 5 && (block.IsAlive || cache.IsAlive); k++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(block.IsAlive, "the compiled Block outlived its VM");
        Assert.False(cache.IsAlive, "the BlockCache outlived its VM");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    static (WeakReference Block, WeakReference Cache) CompileInThrowawayVm()
    {
        using var vm = new Vm(Random.Shared.Next(1000, 1 << 30)); // a fresh B: its own code, not shared
        vm.Run(); // compiles A and B (compile-first), then runs them
        vm.Run();
        var b = vm.Cache.Find(B, vm.Cpu.State->Mode, 0, B)!;
        Assert.NotNull(b.Compiled);
        return (new WeakReference(b), new WeakReference(vm.Cache));
    }
}
