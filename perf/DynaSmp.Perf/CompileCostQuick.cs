using System.Diagnostics;
using System.Reflection.Emit;
using DynaSmp.Jit;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Perf;

/// <summary>`quick-compile`: what RyuJIT charges per region by block shape (median of alternated rounds), to find which
/// emitted pattern makes a kernel's thousands of small regions cost 0.5-1 ms each. REPLAY_SHAPE=name replays that shape's
/// IL with parts removed (<see cref="Experiments"/>), DUMP_SHAPE=name prints it, NOCHAIN=1 compiles without chaining.</summary>
static class CompileCostQuick
{
    static readonly (string Name, Action<Assembler> Body)[] Shapes =
    [
        ("nop", a => { a.nop(); }),
        ("alu4-jmp", a => { for (int k = 0; k < 4; k++) a.add(rax, k + 1); a.jmp(0x20000UL); }),
        ("alu4-ret", a => { for (int k = 0; k < 4; k++) a.add(rax, k + 1); a.ret(); }),
        ("alu4-jcc", a => { for (int k = 0; k < 4; k++) a.add(rax, k + 1); a.jne(0x20000UL); }),
        ("alu4", a => { for (int k = 0; k < 4; k++) a.add(rax, k + 1); }),
        ("alu16", a => { for (int k = 0; k < 16; k++) a.add(rax, k + 1); }),
        ("load1", a => { a.mov(rax, __qword_ptr[rdi + 8]); a.add(rax, 1); a.add(rax, 2); a.add(rax, 3); }),
        ("store1", a => { a.add(rax, 1); a.add(rax, 2); a.add(rax, 3); a.mov(__qword_ptr[rdi + 8], rax); }),
        ("load4", a => { for (int k = 0; k < 4; k++) a.add(rax, __qword_ptr[rdi + 8 * k]); }),
        ("store4", a => { for (int k = 0; k < 4; k++) a.mov(__qword_ptr[rdi + 8 * k], rax); }),
        ("flags4", a => { a.add(rax, rbx); a.adc(rcx, rdx); a.sub(rsi, rax); a.sbb(rdx, rcx); }),
        ("push-pop", a => { a.push(rax); a.push(rbx); a.pop(rcx); a.pop(rdx); }),
        ("tier0call", a => { a.add(rax, 1); a.smsw(ebx); a.add(rax, 2); }),
    ];

    public static void Run()
    {
        var guests = new BenchGuest[Shapes.Length];
        var blocks = new Block[Shapes.Length];
        for (int s = 0; s < Shapes.Length; s++)
        {
            var a = new Assembler(64);
            Shapes[s].Body(a);
            a.hlt();
            var w = new Bytes();
            a.Assemble(w, BenchGuest.Code);
            guests[s] = new BenchGuest(w.Data.ToArray(), JitOptions.InterpretOnly with { Chaining = Environment.GetEnvironmentVariable("NOCHAIN") != "1" });
            try { guests[s].Run(0); } catch (InvalidOperationException) { } // only the first block must be decoded
            blocks[s] = TranslationCost.DecodedBlock(guests[s]);
        }
        if (Environment.GetEnvironmentVariable("REPLAY_SHAPE") is { } replay)
        {
            int d = Array.FindIndex(Shapes, x => x.Name == replay);
            var (ops, locals) = IlReplay.Parse((DynamicMethod)BlockTranslator.TranslateUncached(guests[d].Cpu, blocks[d]).Code.Delegate.Method);
            Experiments.Run(ops, locals);
            return;
        }
        if (Environment.GetEnvironmentVariable("DUMP_SHAPE") is { } dump)
        {
            int d = Array.FindIndex(Shapes, x => x.Name == dump);
            IlDump.Print(BlockTranslator.TranslateUncached(guests[d].Cpu, blocks[d]).Code.Delegate);
            return;
        }
        const int rounds = 60;
        var times = new List<double>[Shapes.Length];
        for (int s = 0; s < Shapes.Length; s++) times[s] = new List<double>();
        for (int r = 0; r < rounds; r++)
            for (int s = 0; s < Shapes.Length; s++)
            {
                long t0 = Stopwatch.GetTimestamp();
                var c = BlockTranslator.TranslateUncached(guests[s].Cpu, blocks[s]);
                long t1 = Stopwatch.GetTimestamp();
                c.Unlink();
                if (r >= 5) times[s].Add((t1 - t0) * 1e6 / Stopwatch.Frequency);
            }
        Console.WriteLine($"{"shape",-10} {"median us",10} {"p10 us",8}");
        for (int s = 0; s < Shapes.Length; s++)
        {
            times[s].Sort();
            Console.WriteLine($"{Shapes[s].Name,-10} {times[s][times[s].Count / 2],10:F0} {times[s][times[s].Count / 10],8:F0}");
        }
        foreach (var g in guests) g.Dispose();
    }

    sealed class Bytes : CodeWriter
    {
        public readonly List<byte> Data = new();
        public override void WriteByte(byte value) => Data.Add(value);
    }
}

/// <summary>Synthetic DynamicMethods of the region signature: the RyuJIT cost of plain IL of a given size, and of each
/// feature the translator's IL has on top (locals, branches, helper calls, a tail call).</summary>
static class SyntheticCompile
{
    static readonly System.Reflection.MethodInfo Helper = typeof(JitHelpers).GetMethod(nameof(JitHelpers.IndirectTarget))!;

    public static void Run()
    {
        Measure("x16", g => Line(g, 16));
        Measure("x16 +30 locals used", g => { var ls = Locals(g, 30); Line(g, 16); foreach (var l in ls) { g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldind_I8); g.Emit(OpCodes.Stloc, l); } foreach (var l in ls) { g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldloc, l); g.Emit(OpCodes.Stind_I8); } });
        Measure("x16 +30 locals unused", g => { Locals(g, 30); Line(g, 16); });
        Measure("x16 +10 branches", g => { for (int k = 0; k < 10; k++) { var l = g.DefineLabel(); g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldind_I4); g.Emit(OpCodes.Brtrue, l); Line(g, 1); g.MarkLabel(l); } Line(g, 6); });
        Measure("x16 +2 calls", g => { for (int k = 0; k < 2; k++) { g.Emit(OpCodes.Ldarg_0); g.Emit(OpCodes.Ldc_I8, 5L); g.Emit(OpCodes.Call, Helper); g.Emit(OpCodes.Pop); } Line(g, 16); });
        Measure("x16 +2 calls noinline", g => { for (int k = 0; k < 2; k++) { g.Emit(OpCodes.Ldarg_0); g.Emit(OpCodes.Ldc_I8, 5L); g.Emit(OpCodes.Call, NoInl); g.Emit(OpCodes.Pop); } Line(g, 16); });
        Measure("x16 +2 calls tiny", g => { for (int k = 0; k < 2; k++) { g.Emit(OpCodes.Ldarg_0); g.Emit(OpCodes.Ldc_I8, 5L); g.Emit(OpCodes.Call, Tiny); g.Emit(OpCodes.Pop); } Line(g, 16); });
        Measure("x16 +2 calls Mem.Read", g => { for (int k = 0; k < 2; k++) { g.Emit(OpCodes.Ldarg_0); g.Emit(OpCodes.Ldc_I8, 5L); g.Emit(OpCodes.Ldc_I4_4); g.Emit(OpCodes.Call, typeof(DynaSmp.Jit.Memory.Mem).GetMethod("ReadForJit")!); g.Emit(OpCodes.Pop); } Line(g, 16); });
        Measure("x16 +tail calli", g => { Line(g, 16); }, tail: true);
    }

    static readonly System.Reflection.MethodInfo NoInl = typeof(SyntheticCompile).GetMethod(nameof(NoInline), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public)!;
    static readonly System.Reflection.MethodInfo Tiny = typeof(SyntheticCompile).GetMethod(nameof(TinyHelper), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public)!;
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static nint NoInline(CpuCore c, ulong x) => (nint)x;
    public static nint TinyHelper(CpuCore c, ulong x) => (nint)x + 1;

    static LocalBuilder[] Locals(ILGenerator g, int n) { var ls = new LocalBuilder[n]; for (int k = 0; k < n; k++) ls[k] = g.DeclareLocal(typeof(ulong)); return ls; }

    static void Line(ILGenerator g, int n)
    {
        for (int k = 0; k < n; k++)
        {
            g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldc_I4, k * 8); g.Emit(OpCodes.Add);
            g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldc_I4, k * 8 + 8); g.Emit(OpCodes.Add);
            g.Emit(OpCodes.Ldind_I8); g.Emit(OpCodes.Ldc_I8, (long)k); g.Emit(OpCodes.Add);
            g.Emit(OpCodes.Stind_I8);
        }
    }

    static void Measure(string name, Action<ILGenerator> body, bool tail = false)
    {
        var times = new List<double>();
        int il = 0;
        for (int r = 0; r < 40; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var m = new DynamicMethod("syn", typeof(int), BlockTranslator.Params, typeof(BlockTranslator).Module, true);
            var g = m.GetILGenerator();
            body(g);
            if (tail)
            {
                g.Emit(OpCodes.Ldarg_0); g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldarg_1); g.Emit(OpCodes.Ldind_I);
                g.Emit(OpCodes.Tailcall);
                g.EmitCalli(OpCodes.Calli, System.Reflection.CallingConventions.Standard, typeof(int), BlockTranslator.Params, null);
            }
            else g.Emit(OpCodes.Ldc_I4_0);
            g.Emit(OpCodes.Ret);
            il = g.ILOffset;
            m.CreateDelegate<BlockFn>();
            CompiledBlock.EntryOf(m);
            if (r >= 5) times.Add((Stopwatch.GetTimestamp() - t0) * 1e6 / Stopwatch.Frequency);
        }
        times.Sort();
        Console.WriteLine($"synthetic {name,-24}: IL {il,5} bytes, median {times[times.Count / 2],6:F0} us");
    }
}

/// <summary>Prints a translated region's IL, one instruction a line (DUMP_SHAPE).</summary>
static class IlDump
{
    public static void Print(BlockFn fn)
    {
        var (ops, locals) = IlReplay.Parse((DynamicMethod)fn.Method);
        Console.WriteLine($"{ops.Count} instructions, {locals.Length} locals");
        foreach (var o in ops)
        {
            string arg = o.Targets != null ? string.Join(",", o.Targets.Select(t => $"IL_{t:x4}"))
                : o.Token != null ? o.Token.GetType().Name
                : o.Code.OperandType == OperandType.InlineNone ? "" : $"0x{o.Arg:x}";
            Console.WriteLine($"IL_{o.Offset:x4}: {o.Code.Name} {arg}");
        }
    }
}

/// <summary>Re-emits a translated region's IL into a fresh DynamicMethod, optionally transformed, to time what RyuJIT
/// charges for each part of it.</summary>
static class IlReplay
{
    public record struct Op(int Offset, OpCode Code, long Arg, int[]? Targets, object? Token);

    public static (List<Op> Ops, Type[] Locals) Parse(DynamicMethod owner)
    {
        var bf = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        var g = owner.GetILGenerator();
        var rt = typeof(ILGenerator).Assembly.GetType("System.Reflection.Emit.RuntimeILGenerator")!;
        var bytes = (byte[])rt.GetMethod("BakeByteArray", bf)!.Invoke(g, null)!;
        int len = bytes.Length;
        var scope = g.GetType().GetField("m_scope", bf)!.GetValue(g)!;
        var tokens = (List<object>)scope.GetType().GetField("m_tokens", bf)!.GetValue(scope)!;
        var sig = ((SignatureHelper)rt.GetField("m_localSignature", bf)!.GetValue(g)!).GetSignature();
        var locals = new List<Type>();
        for (int k = 2; k < sig.Length; k++) locals.Add(sig[k] switch { 0x0B => typeof(ulong), 0x08 => typeof(int), 0x18 => typeof(nint), 0x0A => typeof(long), _ => throw new Exception($"local type {sig[k]:x}") });
        var one = new Dictionary<short, OpCode>();
        foreach (var f in typeof(OpCodes).GetFields()) { var op = (OpCode)f.GetValue(null)!; one[op.Value] = op; }
        var ops = new List<Op>();
        int pc = 0;
        while (pc < len)
        {
            short v = bytes[pc] == 0xFE ? (short)(0xFE00 | bytes[pc + 1]) : bytes[pc];
            var op = one[v];
            int start = pc;
            pc += op.Size;
            long arg = 0; int[]? targets = null; object? token = null;
            switch (op.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineI: case OperandType.ShortInlineVar: arg = op.OperandType == OperandType.ShortInlineI ? (sbyte)bytes[pc] : bytes[pc]; pc += 1; break;
                case OperandType.ShortInlineBrTarget: targets = [pc + 1 + (sbyte)bytes[pc]]; pc += 1; break;
                case OperandType.InlineVar: arg = BitConverter.ToUInt16(bytes, pc); pc += 2; break;
                case OperandType.InlineI8: arg = BitConverter.ToInt64(bytes, pc); pc += 8; break;
                case OperandType.InlineBrTarget: targets = [pc + 4 + BitConverter.ToInt32(bytes, pc)]; pc += 4; break;
                case OperandType.InlineSwitch:
                    int n = BitConverter.ToInt32(bytes, pc); pc += 4;
                    targets = new int[n];
                    for (int k = 0; k < n; k++) targets[k] = pc + 4 * n + BitConverter.ToInt32(bytes, pc + 4 * k);
                    pc += 4 * n; break;
                case OperandType.InlineI: arg = BitConverter.ToInt32(bytes, pc); pc += 4; break;
                default: token = tokens[BitConverter.ToInt32(bytes, pc) & 0xFFFFFF]; pc += 4; break;
            }
            ops.Add(new Op(start, op, arg, targets, token));
        }
        return (ops, locals.ToArray());
    }

    public static double Time(List<Op> ops, Type[] locals, int rounds = 30)
    {
        var times = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var m = new DynamicMethod("replay", typeof(int), BlockTranslator.Params, typeof(BlockTranslator).Module, true);
            var g = m.GetILGenerator();
            foreach (var t in locals) g.DeclareLocal(t);
            var labels = new Dictionary<int, System.Reflection.Emit.Label>();
            foreach (var o in ops) if (o.Targets != null) foreach (var t in o.Targets) if (!labels.ContainsKey(t)) labels[t] = g.DefineLabel();
            foreach (var o in ops)
            {
                if (labels.TryGetValue(o.Offset, out var here)) g.MarkLabel(here);
                var c = o.Code;
                if (o.Targets != null)
                {
                    if (c.OperandType == OperandType.InlineSwitch) g.Emit(c, o.Targets.Select(t => labels[t]).ToArray());
                    else g.Emit(c, labels[o.Targets[0]]);
                }
                else if (c == OpCodes.Calli) g.EmitCalli(OpCodes.Calli, System.Reflection.CallingConventions.Standard, typeof(int), BlockTranslator.Params, null);
                else if (o.Token is RuntimeMethodHandle mh) g.Emit(c, (System.Reflection.MethodInfo)System.Reflection.MethodBase.GetMethodFromHandle(mh)!);
                else if (o.Token != null) throw new Exception($"token {o.Token.GetType()} for {c}");
                else switch (c.OperandType)
                {
                    case OperandType.InlineNone: g.Emit(c); break;
                    case OperandType.ShortInlineI: g.Emit(c, (sbyte)o.Arg); break;
                    case OperandType.ShortInlineVar: g.Emit(c, (byte)o.Arg); break;
                    case OperandType.InlineVar: g.Emit(c, (short)o.Arg); break;
                    case OperandType.InlineI8: g.Emit(c, o.Arg); break;
                    case OperandType.InlineI: g.Emit(c, (int)o.Arg); break;
                    default: throw new Exception($"operand {c.OperandType}");
                }
            }
            m.CreateDelegate<BlockFn>();
            if (CompiledBlock.EntryOf(m) == 0) throw new InvalidProgramException("replay did not compile");
            if (r >= 1) times.Add((Stopwatch.GetTimestamp() - t0) * 1e6 / Stopwatch.Frequency);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}

/// <summary>REPLAY_SHAPE: the shape's IL as emitted, and without its tail calls, its calls, or both, timed alternately.</summary>
static class Experiments
{
    static IlReplay.Op O(OpCode c, long arg = 0) => new(-1, c, arg, null, null);

    /// <summary>Replaces ops [from, from+count) by <paramref name="with"/>; the first new op takes the first old op's offset
    /// (so branches to it still land).</summary>
    static List<IlReplay.Op> Replace(List<IlReplay.Op> ops, int from, int count, params IlReplay.Op[] with)
    {
        if (with.Length == 0) throw new ArgumentException("a replacement needs at least one op to carry the offset", nameof(with));
        var r = new List<IlReplay.Op>(ops.Take(from));
        for (int k = 0; k < with.Length; k++) r.Add(k == 0 ? with[k] with { Offset = ops[from].Offset } : with[k]);
        r.AddRange(ops.Skip(from + count));
        return r;
    }

    public static void Run(List<IlReplay.Op> ops, Type[] locals)
    {
        var variants = new List<(string Name, List<IlReplay.Op> Ops)> { ("identity", ops) };
        var tails = Enumerable.Range(0, ops.Count).Where(k => ops[k].Code == OpCodes.Calli).ToList();
        var noTails = ops;
        for (int t = tails.Count - 1; t >= 0; t--) noTails = Replace(noTails, tails[t] - 1, 2, O(OpCodes.Pop), O(OpCodes.Pop), O(OpCodes.Pop), O(OpCodes.Ldc_I4_0));
        variants.Add(($"no tail calli ({tails.Count})", noTails));
        variants.Add(("calli without tail.", ops.Where(o => o.Code != OpCodes.Tailcall).ToList()));
        // Every call: its arguments stay on the stack and are popped, its result is a constant.
        var calls = Enumerable.Range(0, ops.Count).Where(k => ops[k].Code == OpCodes.Call).ToList();
        var noCalls = ops;
        for (int t = calls.Count - 1; t >= 0; t--)
        {
            var mi = (System.Reflection.MethodInfo)System.Reflection.MethodBase.GetMethodFromHandle((RuntimeMethodHandle)ops[calls[t]].Token!)!;
            var with = new List<IlReplay.Op>();
            foreach (var _ in mi.GetParameters()) with.Add(O(OpCodes.Pop));
            if (mi.ReturnType != typeof(void)) { with.Add(O(OpCodes.Ldc_I4_0)); with.Add(O(mi.ReturnType == typeof(int) ? OpCodes.Nop : mi.ReturnType == typeof(nint) ? OpCodes.Conv_I : OpCodes.Conv_U8)); }
            noCalls = Replace(noCalls, calls[t], 1, with.ToArray());
        }
        variants.Add(($"no calls ({calls.Count})", noCalls));
        var noBoth = noCalls;
        var tails2 = Enumerable.Range(0, noBoth.Count).Where(k => noBoth[k].Code == OpCodes.Calli).ToList();
        for (int t = tails2.Count - 1; t >= 0; t--) noBoth = Replace(noBoth, tails2[t] - 1, 2, O(OpCodes.Pop), O(OpCodes.Pop), O(OpCodes.Pop), O(OpCodes.Ldc_I4_0));
        variants.Add(("no calls, no tail calli", noBoth));
        variants.Add(("empty, same locals", [O(OpCodes.Ldc_I4_0) with { Offset = 0 }, O(OpCodes.Ret) with { Offset = 1 }]));
        var times = variants.Select(_ => new List<double>()).ToList();
        for (int r = 0; r < 25; r++)
            for (int v = 0; v < variants.Count; v++) times[v].Add(IlReplay.Time(variants[v].Ops, locals, rounds: 6));
        for (int v = 0; v < variants.Count; v++) { times[v].Sort(); Console.WriteLine($"{variants[v].Name,-28}: {times[v][times[v].Count / 2],5:F0} us"); }
    }
}
