using System.Reflection.Emit;
using System.Runtime.InteropServices;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>Lowers a decoded <see cref="Block"/> to a DynamicMethod (tier 1).</summary>
public static unsafe class BlockTranslator
{
    internal static readonly Type[] Params = [typeof(CpuCore), typeof(CpuState*)];

    /// <summary>Most blocks one region may hold; keeps IL (and RyuJIT time) bounded.</summary>
    public const int MaxRegionBlocks = 16;

    public static CompiledBlock Translate(CpuCore core, Block b)
    {
        bool full = b.FullRegion;
        return Translate(core, FormRegion(core.Cache, b, full), counted: !full);
    }

    /// <summary>Compiles <paramref name="region"/> (head first) into one method, or reuses the method another VM
    /// compiled from the same instructions (<see cref="SharedTranslations"/>); the returned block is this VM's own.</summary>
    /// <param name="counted">The code counts its entries down from <see cref="CompiledBlock.PromoteAfter"/> and asks
    /// for a full region when they run out (a lean region: see <see cref="FormRegion"/>).</param>
    public static CompiledBlock Translate(CpuCore core, Block[] region, bool counted = false)
    {
        bool chain = Chains(core), bounded = core.Options.BoundedRuns;
        return new CompiledBlock(SharedTranslations.GetOrCompile(core.Cache, region, chain, bounded, counted, () => Compile(region, chain, bounded, counted)));
    }

    /// <summary>This VM's block for a region some VM already compiled from the same instructions, or null: no RyuJIT.</summary>
    public static CompiledBlock? TryShared(CpuCore core, Block[] region, bool counted) =>
        SharedTranslations.Find(region, Chains(core), core.Options.BoundedRuns, counted) is { } code ? new CompiledBlock(code) : null;

    /// <summary>Emits and compiles <paramref name="b"/>'s region without the shared table: what RyuJIT costs (the
    /// TranslationCost benchmark; through <see cref="Translate(CpuCore, Block)"/> every run after the first is a hit).</summary>
    internal static CompiledBlock TranslateUncached(CpuCore core, Block b)
    {
        bool full = b.FullRegion, chain = Chains(core), bounded = core.Options.BoundedRuns;
        return new CompiledBlock(Compile(FormRegion(core.Cache, b, full), chain, bounded, counted: !full));
    }

    static bool Chains(CpuCore core) => core.Options.Chaining && CompiledBlock.FunctionPointersAvailable;

    /// <summary>IL size past which a region is compiled in halves. RyuJIT compiles a method with more than 60,000 IL bytes,
    /// 20,000 IL instructions or 8,000 local-variable references with MinOpts (no register allocation, no inlining): an
    /// SSE-heavy nbody region of 215 instructions was 68 KB of IL, and one of 49 KB was over the other limits.</summary>
    internal const int MaxRegionIlBytes = 24_000;

    /// <summary>Regions this thread compiled with RyuJIT (not found in the shared table): lets a test see that a
    /// measurement of the translator really translates.</summary>
    [ThreadStatic] internal static long ThreadCompiles;

    static SharedCode Compile(Block[] region, bool chain, bool bounded, bool counted)
    {
        ThreadCompiles++;
        long knobStart = TranslatorTestKnob.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        var head = region[0];
        if (DumpRip != null && head.Rip.ToString("x") == DumpRip) Dump(region);
        var method = new DynamicMethod($"blk_{head.Rip:x}_{(int)head.Mode}_{region.Length}", typeof(int), Params, typeof(BlockTranslator).Module, skipVisibility: true);
        var handles = new GCHandle[region.Length];
        var raw = new nint[region.Length];
        // Handles to the members' instruction arrays, not to the Blocks: shared code must not keep a VM alive.
        for (int n = 0; n < region.Length; n++) { handles[n] = GCHandle.Alloc(region[n].Insns, GCHandleType.Normal); raw[n] = GCHandle.ToIntPtr(handles[n]); }
        var emitter = new BlockEmitter(new Il(method.GetILGenerator()), region, chain, bounded, raw, counted);
        emitter.Emit();
        int ilBytes = method.GetILGenerator().ILOffset;
        if (ilBytes > MaxRegionIlBytes && region.Length > 1)
        {
            // Past RyuJIT's MinOpts limits the whole region would run unoptimised: compile the head's nearer half instead
            // (a prefix of the breadth-first members is a region; branches to the rest become exits).
            foreach (var h in handles) h.Free();
            return Compile(region[..(region.Length / 2)], chain, bounded, counted);
        }
        var fn = method.CreateDelegate<BlockFn>();
        nint entry = chain ? CompiledBlock.EntryOf(method) : 0;
        if (entry == 0) System.Runtime.CompilerServices.RuntimeHelpers.PrepareDelegate(fn);
        if (TranslatorTestKnob.Enabled) TranslatorTestKnob.Stall(knobStart);
        return new SharedCode(method, fn, entry, emitter.ExitSlotCount, handles, region.Length, ilBytes, counted);
    }

    /// <summary>DYNASMP_DUMP_REGION=HEX: the guest instructions of the region whose head is at that RIP, on stderr when it
    /// is compiled, to read beside the host code of <c>blk_HEX_*</c> (DOTNET_JitDisasm) or a perf profile.</summary>
    static readonly string? DumpRip = Environment.GetEnvironmentVariable("DYNASMP_DUMP_REGION")?.ToLowerInvariant().TrimStart('0', 'x');

    static void Dump(Block[] region)
    {
        var text = new System.Text.StringBuilder();
        var formatter = new Iced.Intel.NasmFormatter();
        var output = new Iced.Intel.StringOutput();
        foreach (var b in region)
        {
            text.Append($"block {b.Rip:x}:\n");
            foreach (var i in b.Insns)
            {
                formatter.Format(i, output);
                text.Append($"  {i.IP:x}  {output.ToStringAndReset()}\n");
            }
        }
        Console.Error.Write(text.ToString());
    }

    /// <summary>
    /// The head plus the already-decoded blocks it reaches through direct branches without leaving its page,
    /// breadth first. Branches between members become IL branches, so a loop spanning several blocks keeps
    /// its registers in locals. One page only: invalidating that page invalidates the head and the region.
    /// A lean region (the first compile of a head) leaves out blocks compiled or queued on their own and exits to them
    /// instead; a full one (<see cref="Block.FullRegion"/>, once the code proved hot) takes them in again.
    /// </summary>
    /// <remarks>PERF: with every region full, a Debian kernel boot compiled each block into about six regions (3,900
    /// regions, 25,000 member compilations, 7.5 s of RyuJIT on the compile thread); lean first regions took 4.0 s and cut
    /// the blocks interpreted while waiting from 23M to 13M. Lean regions alone split hot loops across methods (the
    /// workloads ran 1.1-2.8x slower), hence the promotion to a full region; with it, 6.1 s and 17.5M.</remarks>
    public static Block[] FormRegion(BlockCache cache, Block head, bool full)
    {
        if (head.Page1 != ulong.MaxValue || !cache.Regions) return [head];
        var members = new List<Block> { head };
        ulong headLin = head.CsBase + head.Rip;
        Span<ulong> targets = stackalloc ulong[2];
        for (int n = 0; n < members.Count && members.Count < MaxRegionBlocks; n++)
        {
            var m = members[n];
            ref readonly var last = ref m.Insns[^1];
            int count = 0;
            if (last.FlowControl is Iced.Intel.FlowControl.ConditionalBranch or Iced.Intel.FlowControl.UnconditionalBranch or Iced.Intel.FlowControl.Call
                && last.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
                targets[count++] = last.NearBranchTarget;
            // After a CALL, the return address: a RET in the region can then branch to it directly.
            if (last.FlowControl is Iced.Intel.FlowControl.ConditionalBranch or Iced.Intel.FlowControl.Next or Iced.Intel.FlowControl.Call)
                targets[count++] = X86Code.NextIp(last, m.Mode);
            for (int t = 0; t < count && members.Count < MaxRegionBlocks; t++)
            {
                ulong rip = targets[t];
                ulong lin = head.CsBase + rip;
                if ((lin >> 12) != (headLin >> 12) || Contains(members, rip)) continue;
                ulong phys = (head.Phys & ~GuestRam.PageMask) | (lin & GuestRam.PageMask);
                var b = cache.Find(phys, head.Mode, head.CsBase, rip);
                if (b == null || b.Page1 != ulong.MaxValue || b.Page0 != head.Page0) continue;
                if (!full && (b.Compiled != null || Volatile.Read(ref b.TierUpQueued) != 0)) continue;
                members.Add(b);
            }
        }
        return members.ToArray();
    }

    static bool Contains(List<Block> blocks, ulong rip)
    {
        foreach (var b in blocks) if (b.Rip == rip) return true;
        return false;
    }
}
