using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;
using Decoder = Iced.Intel.Decoder;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// Segmented tier-1 code (real mode, 16-bit protected mode, 32-bit code with segment bases and limits) against tier 0,
/// the reference semantics (the host cannot run 16-bit code). Random straight-line sequences of memory, stack and ALU
/// instructions with 16- and 32-bit operand and address sizes run with non-zero bases, limits the offsets cross, 16-bit
/// offsets that wrap and an SP that wraps; registers, RIP, the exit and its vector, the defined flags and every segment's
/// 64 KiB window must agree.
/// </summary>
[Collection("Differential")]
public sealed unsafe class SegmentedTierTests(ITestOutputHelper output)
{
    public enum Shape { Real, Protected16, Protected32 }

    const ulong CsBase = 0x10000, DsBase = 0x20000, EsBase = 0x30000, SsBase = 0x40000;
    const ulong Ip = 0x100;
    const int RamSize = 0x80_0000;

    sealed record Case(ulong Seed, Shape Shape, byte[] Code, string Text, ulong[] Gpr, uint DsLimit, uint SsLimit, ulong FlagMask,
        Dictionary<ulong, ulong> FaultFlagMask);

    sealed record Outcome(ExitReason Exit, int Vector, ulong Rip, ulong[] Gpr, ulong Flags, byte[] Memory, long CompiledEntries, string Calls) : ITierOutcome;

    // ---- generation --------------------------------------------------------------------------------------------

    static Case Generate(ulong seed, Shape shape)
    {
        var r = new Rng(seed);
        int bits = shape == Shape.Protected32 ? 32 : 16;
        var gpr = new ulong[16];
        for (int k = 0; k < 8; k++) gpr[k] = r.NextU64() & 0xFFFF_FFFF;
        // Address registers: small offsets, offsets near the limits and near 64 KiB (16-bit wrap).
        foreach (int k in new[] { 3, 5, 6, 7 }) gpr[k] = Offset(r) | (bits == 16 && r.Percent(50) ? r.NextU64() & 0xFFFF_0000 : 0);
        gpr[4] = r.Next(6) switch
        {
            0 => 0, 1 => 2, 2 => 0xFFFE, 3 => 0x7FFE, 4 => 0x1000 + (ulong)r.Next(0x100) * 2, _ => 0x8002,
        } | (bits == 16 ? r.NextU64() & 0xFFFF_0000 : 0);
        uint dsLimit = shape == Shape.Real ? 0xFFFF : r.Pick(new uint[] { 0xFFFF, 0xFFFF, 0xFFFF, 0x0FFF, 0x7FFF, 0x1001 });
        uint ssLimit = shape == Shape.Real ? 0xFFFF : r.Pick(new uint[] { 0xFFFF, 0xFFFF, 0xFFFF, 0x7FFF, 0x8001 });

        var bytes = new List<byte>();
        var text = new StringBuilder();
        var faultMask = new Dictionary<ulong, ulong>();
        RflagsBits undefined = RflagsBits.None;
        int want = r.Next(2, 10);
        for (int made = 0, attempt = 0; made < want && attempt < 200; attempt++)
        {
            var asm = new Assembler(bits);
            var label = asm.CreateLabel();
            try { Emit(asm, r, bits, label); } catch (ArgumentException) { continue; }
            asm.Label(ref label);
            asm.nop(); // the label needs an instruction: dropped below
            var w = new CodeBytes();
            ulong ip = Ip + (ulong)bytes.Count;
            try { asm.Assemble(w, ip); } catch (Exception) { continue; }
            var all = w.ToArray();
            var decoded = Decoder.Create(bits, all, ip).Decode();
            if (decoded.Code == Iced.Intel.Code.INVALID) continue;
            var one = all[..decoded.Length];
            if (!UndefinedResults.Append(decoded, ip, ref undefined, faultMask)) continue; // reads a flag left undefined
            bytes.AddRange(one);
            text.Append(decoded).Append("; ");
            made++;
        }
        ulong mask = (RFlags.Status | RFlags.DF) & ~UndefinedResults.FlagBits(undefined);
        return new Case(seed, shape, bytes.ToArray(), text.ToString(), gpr, dsLimit, ssLimit, mask, faultMask);
    }

    static ulong Offset(Rng r) => r.Next(10) switch
    {
        0 => 0xFF0 + (ulong)r.Next(0x20), 1 => 0x7FF0 + (ulong)r.Next(0x20), 2 => 0xFFF0 + (ulong)r.Next(0x10),
        3 => (ulong)r.Next(0x10000), _ => (ulong)r.Next(0x400),
    };

    static AssemblerMemoryOperand Mem(Rng r, int bits, int size)
    {
        bool a32 = bits == 32 ? !r.Percent(15) : r.Percent(15);
        int disp = r.Next(4) switch { 0 => 0, 1 => r.Next(16), 2 => -r.Next(16), _ => r.Next(0x100) };
        AssemblerMemoryOperandFactory ptr = size switch { 1 => __byte_ptr, 2 => __word_ptr, _ => __dword_ptr };
        if (a32)
        {
            var b = r.Pick(new[] { ebx, esi, edi, ebp });
            return r.Next(3) switch
            {
                0 => ptr[b + disp],
                1 => ptr[b + r.Pick(new[] { ebx, esi, edi }) + disp],
                _ => r.Percent(50) ? ptr.es[b + disp] : ptr.ss[b + disp],
            };
        }
        return r.Next(6) switch
        {
            0 => ptr[bx + si + disp], 1 => ptr[bx + di + disp], 2 => ptr[bp + si + disp],
            3 => ptr[si + disp], 4 => ptr.es[di + disp], _ => ptr[bx + disp],
        };
    }

    static AssemblerRegister16 R16(Rng r) => r.Pick(new[] { ax, cx, dx, bx, si, di, bp });
    static AssemblerRegister32 R32(Rng r) => r.Pick(new[] { eax, ecx, edx, ebx, esi, edi, ebp });
    static AssemblerRegister8 R8(Rng r) => r.Pick(new[] { al, cl, dl, bl, ah, ch, dh, bh });

    /// <summary>One random instruction. Operand size 16 or 32 in either code size (66h), byte forms too.</summary>
    static void Emit(Assembler a, Rng r, int bits, Label next)
    {
        int size = r.Next(5) switch { 0 => 1, 1 or 2 => 2, _ => 4 };
        var m = Mem(r, bits, size);
        switch (r.Next(16))
        {
            case 0: // MOV
                if (r.Percent(50)) { if (size == 1) a.mov(R8(r), m); else if (size == 2) a.mov(R16(r), m); else a.mov(R32(r), m); }
                else if (r.Percent(70)) { if (size == 1) a.mov(m, R8(r)); else if (size == 2) a.mov(m, R16(r)); else a.mov(m, R32(r)); }
                else a.mov(m, r.Next(0x10000));
                break;
            case 1: case 2: // ALU
            {
                int op = r.Next(8);
                if (r.Percent(40)) { if (size == 1) Alu(a, op, R8(r), m); else if (size == 2) Alu(a, op, R16(r), m); else Alu(a, op, R32(r), m); }
                else if (r.Percent(60)) { if (size == 1) Alu(a, op, m, R8(r)); else if (size == 2) Alu(a, op, m, R16(r)); else Alu(a, op, m, R32(r)); }
                else Alu(a, op, m, r.Next(-128, 128));
                break;
            }
            case 3: // INC/DEC/NEG/NOT
                switch (r.Next(4)) { case 0: a.inc(m); break; case 1: a.dec(m); break; case 2: a.neg(m); break; default: a.not(m); break; }
                break;
            case 4: // shifts by immediate or CL
            {
                int n = r.Next(1, 9);
                switch (r.Next(5))
                {
                    case 0: if (r.Percent(50)) a.shl(m, (byte)n); else a.shl(m, cl); break;
                    case 1: if (r.Percent(50)) a.shr(m, (byte)n); else a.shr(m, cl); break;
                    case 2: a.sar(m, (byte)n); break;
                    case 3: a.rol(m, (byte)n); break;
                    default: a.ror(m, (byte)n); break;
                }
                break;
            }
            case 5: // MOVZX/MOVSX, LEA
                if (r.Percent(60))
                {
                    var b = Mem(r, bits, 1);
                    switch (r.Next(4)) { case 0: a.movzx(R16(r), b); break; case 1: a.movzx(R32(r), b); break; case 2: a.movsx(R16(r), b); break; default: a.movsx(R32(r), b); break; }
                }
                else if (r.Percent(50)) a.lea(R16(r), Mem(r, bits, 2)); else a.lea(R32(r), Mem(r, bits, 4));
                break;
            case 6: case 7: // PUSH
                switch (r.Next(4))
                {
                    case 0: a.push(R16(r)); break;
                    case 1: a.push(R32(r)); break;
                    case 2: a.push(Mem(r, bits, r.Percent(50) ? 2 : 4)); break;
                    default: if (bits == 16) a.push(r.Next(0x8000)); else a.push(r.Next(0x10000)); break;
                }
                break;
            case 8: case 9: // POP
                switch (r.Next(3))
                {
                    case 0: a.pop(R16(r)); break;
                    case 1: a.pop(R32(r)); break;
                    default: a.pop(Mem(r, bits, r.Percent(50) ? 2 : 4)); break;
                }
                break;
            case 10: // XCHG, XADD, CMPXCHG, LOCK ADD (the atomic path)
                if (size == 1) { a.xchg(m, R8(r)); break; }
                switch (r.Next(4))
                {
                    case 0: if (size == 2) a.xchg(m, R16(r)); else a.xchg(m, R32(r)); break;
                    case 1: if (size == 2) a.xadd(m, R16(r)); else a.xadd(m, R32(r)); break;
                    case 2: if (size == 2) a.cmpxchg(m, R16(r)); else a.cmpxchg(m, R32(r)); break;
                    default: if (size == 2) a.@lock.add(m, R16(r)); else a.@lock.add(m, R32(r)); break;
                }
                break;
            case 11: // CMOVcc, SETcc, multiply
                if (size == 1) { if (r.Percent(50)) a.sete(m); else a.setb(m); break; }
                switch (r.Next(3))
                {
                    case 0: if (size == 2) a.cmovne(R16(r), m); else a.cmovb(R32(r), m); break;
                    case 1: if (size == 2) a.imul(R16(r), m); else a.imul(R32(r), m); break;
                    default: a.mul(m); break;
                }
                break;
            case 12: // CALL to the next instruction (pushes the return address), ENTER/LEAVE
                switch (r.Next(3))
                {
                    case 0: a.call(next); break;
                    case 1: a.enter((ushort)r.Next(0, 16), 0); break;
                    default: a.leave(); break;
                }
                break;
            case 13: // register-only forms
                switch (r.Next(4))
                {
                    case 0: a.cwd(); break;
                    case 1: a.cbw(); break;
                    case 2: a.add(R16(r), R16(r)); break;
                    default: a.xor(R32(r), r.Next(0x10000)); break;
                }
                break;
            case 14: a.bt(size == 1 ? Mem(r, bits, 2) : m, (byte)r.Next(16)); break;
            default: // MOV to or from the stack directly
                if (size == 1) a.mov(R8(r), m); else if (size == 2) a.mov(m, R16(r)); else a.add(R32(r), m);
                break;
        }
    }

    static void Alu(Assembler a, int op, AssemblerRegister8 d, AssemblerMemoryOperand s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerRegister16 d, AssemblerMemoryOperand s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerRegister32 d, AssemblerMemoryOperand s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerMemoryOperand d, AssemblerRegister8 s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerMemoryOperand d, AssemblerRegister16 s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerMemoryOperand d, AssemblerRegister32 s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }
    static void Alu(Assembler a, int op, AssemblerMemoryOperand d, int s) { switch (op) { case 0: a.add(d, s); break; case 1: a.sub(d, s); break; case 2: a.and(d, s); break; case 3: a.or(d, s); break; case 4: a.xor(d, s); break; case 5: a.cmp(d, s); break; case 6: a.adc(d, s); break; default: a.sbb(d, s); break; } }

    // ---- running -----------------------------------------------------------------------------------------------

    /// <summary>Puts the CPU in <paramref name="shape"/> with CS/DS/ES/SS at distinct bases (FS/GS = DS).</summary>
    internal static void Enter(CpuCore cpu, Shape shape, uint dsLimit = 0xFFFF, uint ssLimit = 0xFFFF, ulong ip = Ip)
    {
        CpuState* s = cpu.State;
        if (shape == Shape.Real)
        {
            cpu.SetReal((ushort)(CsBase >> 4), (ushort)ip, 0);
            s->Ds.LoadRealMode((ushort)(DsBase >> 4)); s->Fs.LoadRealMode((ushort)(DsBase >> 4)); s->Gs.LoadRealMode((ushort)(DsBase >> 4));
            s->Es.LoadRealMode((ushort)(EsBase >> 4));
            s->Ss.LoadRealMode((ushort)(SsBase >> 4));
            return;
        }
        cpu.SetFlat32(ip, 0);
        uint big = shape == Shape.Protected32 ? SegmentCache.DefaultBig : 0;
        s->Cs = new SegmentCache { Selector = 0x08, Base = CsBase, Limit = shape == Shape.Protected32 ? 0xF_FFFFu : 0xFFFFu, Attributes = 0x9B | SegmentCache.Present | big };
        s->Ds = new SegmentCache { Selector = 0x10, Base = DsBase, Limit = dsLimit, Attributes = 0x93 | SegmentCache.Present | big };
        s->Fs = s->Gs = s->Ds;
        s->Es = new SegmentCache { Selector = 0x18, Base = EsBase, Limit = 0xFFFF, Attributes = 0x93 | SegmentCache.Present | big };
        s->Ss = new SegmentCache { Selector = 0x20, Base = SsBase, Limit = ssLimit, Attributes = 0x93 | SegmentCache.Present | big };
        cpu.UpdateMode();
    }

    static Outcome Run(Case c, bool compiled, JitOptions? options = null)
    {
        using var ram = new GuestRam(RamSize);
        var fill = new byte[0x40000];
        new Random((int)c.Seed).NextBytes(fill);
        ram.Write(DsBase, fill);
        var code = new byte[c.Code.Length + 1];
        c.Code.CopyTo(code, 0);
        code[^1] = 0xF4;
        ram.Write(CsBase + Ip, code);
        var cache = new BlockCache(ram);
        using var cpu = new CpuCore(ram, EmptyBus.Instance, cache, compiled ? options ?? JitOptions.CompileFirst with { ProfileFallbacks = true } : JitOptions.InterpretOnly);
        Enter(cpu, c.Shape, c.DsLimit, c.SsLimit);
        CpuState* s = cpu.State;
        for (int k = 0; k < 8; k++) s->Gpr[k] = c.Gpr[k];
        if (compiled && cpu.Lookup() is { } b) TierUp.CompileNow(cpu, b);
        var exit = cpu.Run(1000);
        var gpr = new ulong[16];
        for (int k = 0; k < 16; k++) gpr[k] = s->Gpr[k];
        return new Outcome(exit, exit == ExitReason.Exception ? cpu.ExitVector : -1, s->Rip, gpr, Flags.Get(s),
            ram.Span(DsBase, 0x40000).ToArray(), cpu.CompiledBlockEntries, Calls(cpu));
    }

    /// <summary>Tier-0 calls the compiled code made, by instruction (HLT excluded: it ends every case).</summary>
    static string Calls(CpuCore cpu)
    {
        if (cpu.TierZeroCalls is not { } counts) return "";
        var sb = new StringBuilder();
        for (int k = 0; k < counts.Length; k++)
            if (counts[k] != 0 && (Code)k != Code.Hlt) sb.Append((Code)k).Append(" x").Append(counts[k]).Append("; ");
        return sb.ToString();
    }

    static string? Compare(Case c, Outcome t0, Outcome t1)
    {
        var sb = TierDiff.Compare(t0, t1, c.Gpr, 8, c.FlagMask, c.FaultFlagMask);
        if (!t0.Memory.AsSpan().SequenceEqual(t1.Memory)) sb.AppendLine("  memory differs");
        return sb.Length == 0 ? null : sb.ToString();
    }

    void RunMany(Shape shape, ulong runSeed, int count)
    {
        int failed = 0, faults = 0, inline = 0;
        var report = new StringBuilder();
        for (int k = 0; k < count; k++)
        {
            ulong seed = Rng.Mix(runSeed ^ (ulong)shape, (ulong)k);
            var c = Generate(seed, shape);
            var t0 = Run(c, compiled: false);
            var t1 = Run(c, compiled: true);
            if (t0.Exit == ExitReason.Exception) faults++;
            if (t1.Calls == "") inline++;
            string? diff = Compare(c, t0, t1);
            if (diff == null) continue;
            if (++failed <= 5) report.AppendLine($"seed 0x{seed:x} (DYNASMP_SEGMENTED_SEED={shape}:0x{seed:x}): {c.Text}\n  bytes {Convert.ToHexString(c.Code)} ds limit 0x{c.DsLimit:x} ss limit 0x{c.SsLimit:x}\n{diff}");
        }
        string summary = $"{shape}, tier 1 vs tier 0: {count} sequences, {faults} ended in an exception in both, {inline} made no tier-0 call, {failed} differ; run seed 0x{runSeed:x}";
        output.WriteLine(summary);
        if (failed > 0) Assert.Fail(summary + "\n" + report);
        Assert.True(inline > count / 2, summary); // most sequences ran inline: a lowering that silently falls back fails
    }

    public static TheoryData<Shape> Shapes => new() { Shape.Real, Shape.Protected16, Shape.Protected32 };

    [Theory, MemberData(nameof(Shapes))]
    public void Fixed_run(Shape shape) => RunMany(shape, 0x5E6_0000, 1500);

    [Theory, MemberData(nameof(Shapes))]
    public void Random_run(Shape shape)
    {
        if (Environment.GetEnvironmentVariable("DYNASMP_SEGMENTED_SEED") is { } one && one.StartsWith(shape + ":", StringComparison.Ordinal))
        {
            var c = Generate(DiffHarness.ParseSeed(one[(one.IndexOf(':') + 1)..])!.Value, shape);
            output.WriteLine(c.Text);
            Assert.Null(Compare(c, Run(c, false), Run(c, true)));
            return;
        }
        RunMany(shape, DiffHarness.RunSeed, 700);
    }

    // ---- targeted ----------------------------------------------------------------------------------------------

    /// <summary>A loop summing a word array through DS with a 16-bit stack round trip per element: after tier-up it runs
    /// in tier 1 without a single tier-0 call, in real mode and in 16-bit protected mode.</summary>
    [Theory]
    [InlineData(Shape.Real)]
    [InlineData(Shape.Protected16)]
    public void A_16_bit_loop_runs_in_tier_1(Shape shape)
    {
        var a = new Assembler(16);
        var top = a.CreateLabel();
        a.xor(ax, ax);
        a.mov(si, 0x10);
        a.mov(cx, 1000);
        a.Label(ref top);
        a.add(ax, __word_ptr[si]);
        a.push(ax);
        a.pop(dx);
        a.add(si, 2);
        a.and(si, 0x1FE);
        a.loop(top);
        a.hlt();
        var w = new CodeBytes();
        a.Assemble(w, Ip);
        using var ram = new GuestRam(RamSize);
        for (ulong k = 0; k < 0x200; k += 2) ram.Write(DsBase + k, BitConverter.GetBytes((ushort)k));
        ram.Write(CsBase + Ip, w.ToArray());
        var options = JitOptions.CompileFirst with { ProfileFallbacks = true };
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        Enter(cpu, shape);
        CpuState* s = cpu.State;
        s->Gpr[4] = 0x100;
        Assert.Equal(ExitReason.Hlt, cpu.Run(100_000));
        ulong sum = 0;
        for (int k = 0; k < 1000; k++) sum += (ulong)(((0x10 + 2 * k) & 0x1FE));
        Assert.Equal(sum & 0xFFFF, s->Gpr[0] & 0xFFFF);
        Assert.Equal(0x100UL, s->Gpr[4]);
        Assert.Equal("", Calls(cpu));
        Assert.True(cpu.InterpretedBlocks <= 2, $"{cpu.InterpretedBlocks} interpreted blocks");
    }

    /// <summary>32-bit code whose DS has a base: its flat code's entry guard fails once, and the block is recompiled
    /// segmented rather than interpreted from then on.</summary>
    [Fact]
    public void Non_flat_32_bit_code_is_recompiled_segmented()
    {
        var a = new Assembler(32);
        var top = a.CreateLabel();
        a.xor(eax, eax);
        a.mov(ecx, 500);
        a.Label(ref top);
        a.add(eax, __dword_ptr[ecx * 4]);
        a.loop(top);
        a.hlt();
        var w = new CodeBytes();
        a.Assemble(w, Ip);
        using var ram = new GuestRam(RamSize);
        for (ulong k = 0; k <= 500; k++) ram.Write(DsBase + k * 4, BitConverter.GetBytes((uint)k));
        ram.Write(Ip, w.ToArray());
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), JitOptions.CompileFirst with { ProfileFallbacks = true });
        cpu.SetFlat32(Ip, 0x8000);
        cpu.State->Ds.Base = DsBase;
        Assert.Equal(ExitReason.Hlt, cpu.Run(100_000));
        Assert.Equal(500UL * 501 / 2, cpu.State->Gpr[0]);
        Assert.Equal("", Calls(cpu));
        Assert.True(cpu.InterpretedBlocks <= 3, $"{cpu.InterpretedBlocks} interpreted blocks");
    }

    /// <summary>Near branches in segmented protected-mode code: a target past the CS limit is #GP(0) at the branch with
    /// nothing changed (a CALL pushes nothing, a RET pops nothing, a LOOP keeps its counter).</summary>
    [Theory]
    [InlineData("jmp")]
    [InlineData("call")]
    [InlineData("ret")]
    [InlineData("loop")]
    [InlineData("jcc")]
    public void A_branch_past_the_CS_limit_faults_at_the_branch(string kind)
    {
        var a = new Assembler(16);
        a.mov(cx, 5);
        a.mov(bx, 0x1234);
        a.push(0x160); // a RET's target
        switch (kind)
        {
            case "jmp": a.jmp(0x160); break;
            case "call": a.call(0x160); break;
            case "ret": a.ret(); break;
            case "loop": a.loop(0x160); break;
            default: a.cmp(bx, 0x1234); a.je(0x160); break;
        }
        a.hlt();
        var w = new CodeBytes();
        a.Assemble(w, Ip);
        foreach (bool compiled in new[] { false, true })
        {
            using var ram = new GuestRam(RamSize);
            ram.Write(CsBase + Ip, w.ToArray());
            using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram),
                compiled ? JitOptions.CompileFirst with { ProfileFallbacks = true } : JitOptions.InterpretOnly);
            Enter(cpu, Shape.Protected16);
            cpu.State->Cs.Limit = 0x150; // past the code, short of the target
            cpu.State->Gpr[4] = 0x200;
            Assert.Equal(ExitReason.Exception, cpu.Run(1000));
            Assert.Equal(Vector.GP, cpu.ExitVector);
            var branch = Decoder.Create(16, w.ToArray(), Ip);
            ulong at = 0;
            foreach (var i in branch) { if (i.FlowControl != FlowControl.Next) { at = i.IP; break; } }
            Assert.Equal(at, cpu.State->Rip);
            Assert.Equal(5UL, cpu.State->Gpr[1] & 0xFFFF);
            Assert.Equal(0x1FEUL, cpu.State->Gpr[4]);
            if (compiled) Assert.Equal("", Calls(cpu));
        }
    }
}
