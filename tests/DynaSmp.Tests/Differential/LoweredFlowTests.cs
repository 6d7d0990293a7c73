using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// Tier 1's lowering of LOOP/LOOPE/LOOPNE/JCXZ/JECXZ/JRCXZ, ENTER, CALL/RET (RET imm16, indirect CALL) and PUSH/POP of
/// memory and 16-bit operands: branchy snippets the one-instruction groups cannot express. 64-bit snippets run on the host
/// CPU and in both tiers (<see cref="DiffHarness.RunCase"/>) with random registers; 32-bit ones (the host cannot run them
/// from this process) compare tier 1 with tier 0. Each snippet must also run without a tier-0 call, so a test cannot pass
/// by the instruction silently staying in tier 0.
/// </summary>
[Collection("Differential")]
public sealed unsafe class LoweredFlowTests(ITestOutputHelper output)
{
    const int CasesPerSnippet = 150;

    /// <summary>A snippet: its code, and how it adjusts the random input (loop counts, pointers).</summary>
    sealed record Snippet(Func<int, byte[]> Assemble, Action<CaseBuilder> Setup);

    static byte[] Asm(int bits, ulong rip, Action<Assembler> body)
    {
        var a = new Assembler(bits);
        body(a);
        var w = new CodeBytes();
        a.Assemble(w, rip);
        return w.ToArray();
    }

    static Snippet At64(Action<Assembler> body, Action<CaseBuilder> setup) => new(_ => Asm(64, NativeRunner.TestRip, body), setup);

    static void Count(CaseBuilder b, int max) => b.St.Gpr[1] = (b.St.Gpr[1] & ~0xFFFF_FFFFUL) | (uint)b.R.Next(1, max);

    static readonly Dictionary<string, Snippet> Host64 = new()
    {
        ["loop"] = At64(a => { var l = a.CreateLabel(); a.Label(ref l); a.add(rbx, rcx); a.loop(l); }, b => b.St.Gpr[1] = (ulong)b.R.Next(1, 40)),
        ["loope"] = At64(a => { var l = a.CreateLabel(); a.Label(ref l); a.add(rbx, 1); a.test(bl, 3); a.loope(l); }, b => b.St.Gpr[1] = (ulong)b.R.Next(1, 40)),
        ["loopne"] = At64(a => { var l = a.CreateLabel(); a.Label(ref l); a.add(rbx, 1); a.test(bl, 7); a.loopne(l); }, b => b.St.Gpr[1] = (ulong)b.R.Next(1, 40)),
        // add rbx, rcx; a32 loop (ECX counter, RCX's upper half random): 48 01 CB 67 E2 FA
        ["a32 loop"] = new(_ => [0x48, 0x01, 0xCB, 0x67, 0xE2, 0xFA], b => Count(b, 40)),
        ["jrcxz"] = At64(a => { var skip = a.CreateLabel(); a.jrcxz(skip); a.add(rbx, rdx); a.Label(ref skip); a.add(rbx, 1); },
            b => { if (b.R.Percent(50)) b.St.Gpr[1] = 0; }),
        // a32 jecxz +3; add rbx, rdx; add rbx, 1: 67 E3 03 48 01 D3 48 83 C3 01
        ["jecxz"] = new(_ => [0x67, 0xE3, 0x03, 0x48, 0x01, 0xD3, 0x48, 0x83, 0xC3, 0x01],
            b => { if (b.R.Percent(50)) b.St.Gpr[1] &= ~0xFFFF_FFFFUL; }),
        ["enter/leave"] = At64(a => { a.enter(0x28, 0); a.mov(__qword_ptr[rsp], rcx); a.mov(__qword_ptr[rbp - 8], rdx); a.leave(); }, _ => { }),
        ["enter"] = At64(a => { a.enter(0x10, 0); a.mov(__qword_ptr[rsp + 8], rax); }, _ => { }),
        ["call/ret imm16"] = At64(a =>
        {
            Label f = a.CreateLabel(), end = a.CreateLabel();
            a.push(rax); a.call(f); a.add(rbx, 1); a.jmp(end);
            a.Label(ref f); a.add(rbx, rcx); a.ret(8);
            a.Label(ref end); a.nop();
        }, _ => { }),
        ["call indirect"] = At64(a =>
        {
            Label f = a.CreateLabel(), end = a.CreateLabel();
            a.lea(rax, __[f]); a.call(rax); a.mov(__qword_ptr[rsp - 8], rax); a.call(__qword_ptr[rsp - 8]); a.jmp(end);
            a.Label(ref f); a.add(rbx, rcx); a.ret();
            a.Label(ref end); a.nop();
        }, _ => { }),
        ["push m, 16-bit push/pop"] = At64(a =>
        {
            a.push(__qword_ptr[rsp + 8]); a.pop(rcx); a.push(__word_ptr[rsp]); a.pop(dx); a.push((short)0x1234); a.pop(si);
            a.push(bx); a.pop(__qword_ptr[rsp]);
        }, _ => { }),
    };

    public static TheoryData<string> Host64Names() => new(Host64.Keys);

    [DifferentialTheory]
    [MemberData(nameof(Host64Names))]
    public void Matches_the_host_in_both_tiers_without_tier_0_calls(string name)
    {
        var snippet = Host64[name];
        byte[] code = snippet.Assemble(64);
        int failed = 0;
        var report = new StringBuilder();
        lock (NativeRunner.Lock)
        {
            using var ram = DiffHarness.NewRam();
            for (int k = 0; k < CasesPerSnippet; k++)
            {
                var b = new CaseBuilder(Rng.Mix(0x5A1_F10E, (ulong)k));
                snippet.Setup(b);
                var c = new DiffCase
                {
                    Group = "LoweredFlow", Seed = (ulong)k, Code = code, Insn = Iced.Intel.Decoder.Create(64, code, NativeRunner.TestRip).Decode(),
                    Input = b.St, Buffer = b.Buf, Stack = b.Stack, Mask = new CompareMask { Flags = RFlags.Status | RFlags.DF },
                };
                var (diff, tier, _) = DiffHarness.RunCase(c, ram);
                if (diff != null && ++failed <= 3) report.AppendLine($"{name} case {k} ({tier}):\n{diff}");
            }
        }
        output.WriteLine($"{name}: {CasesPerSnippet} cases, {failed} differ");
        Assert.True(failed == 0, report.ToString());
        Assert.Equal("Hlt x1; ", TierZeroCalls(code, bits: 64, NativeRunner.TestRip));
    }

    /// <summary>LFENCE and SFENCE are lowered to nothing in tier 1 (no tier-0 call); MFENCE stays a tier-0 call, where it
    /// fences the host; the registers around them are untouched in both tiers.</summary>
    [Fact]
    public void Fences_lfence_and_sfence_are_lowered_mfence_is_a_tier0_call()
    {
        var a = new Iced.Intel.Assembler(64);
        a.mov(Iced.Intel.AssemblerRegisters.rax, 5); a.lfence(); a.add(Iced.Intel.AssemblerRegisters.rax, 7); a.sfence();
        a.add(Iced.Intel.AssemblerRegisters.rax, 9); a.mfence(); a.add(Iced.Intel.AssemblerRegisters.rax, 11);
        var w = new CodeBytes();
        a.Assemble(w, NativeRunner.TestRip);
        byte[] code = w.ToArray();
        Assert.Equal("Hlt x1; Mfence x1; ", TierZeroCalls(code, bits: 64, NativeRunner.TestRip)); // in Code order
        var input = new MachineState { Rflags = 0x202 };
        input.Gpr[4] = NativeRunner.StackTop;
        foreach (var options in new[] { JitOptions.InterpretOnly, JitOptions.CompileFirst })
            Assert.Equal(32UL, RunAt(code, input, 64, NativeRunner.TestRip, options).Gpr[0]);
    }

    /// <summary>Tier-0 calls made by the compiled snippet (every block compiled before it runs).</summary>
    static string TierZeroCalls(byte[] code, int bits, ulong rip, Action<CpuCore>? setup = null)
    {
        var input = new MachineState { Rflags = 0x202 };
        input.Gpr[1] = 3; input.Gpr[4] = NativeRunner.StackTop;
        var r = RunAt(code, input, bits, rip, JitOptions.CompileFirst with { ProfileFallbacks = true }, setup);
        return r.Calls;
    }

    internal sealed record Outcome(ExitReason Exit, int Vector, ulong Rip, ulong[] Gpr, ulong Flags, byte[] Stack, string Calls, byte[] Memory);

    /// <summary>Runs <paramref name="code"/> (then HLT) at <paramref name="rip"/> in flat 64- or 32-bit mode; returns the
    /// state, the stack window, the tier-0 calls (with <see cref="JitOptions.ProfileFallbacks"/>) and RAM at
    /// [<paramref name="memory"/>, + <paramref name="memoryLength"/>), after <paramref name="init"/> prepared RAM.</summary>
    internal static Outcome RunAt(byte[] code, MachineState input, int bits, ulong rip, JitOptions options, Action<CpuCore>? setup = null,
        Action<GuestRam>? init = null, ulong memory = 0, int memoryLength = 0)
    {
        using var ram = DiffHarness.NewRam();
        init?.Invoke(ram);
        ram.Write(rip, [.. code, 0xF4]);
        ulong stackLo = input.Gpr[4] - NativeRunner.StackBelow;
        var cache = new BlockCache(ram);
        using var cpu = new CpuCore(ram, EmptyBus.Instance, cache, options);
        CpuState* s = cpu.State;
        if (bits == 32) cpu.SetFlat32(rip, input.Gpr[4]); else cpu.SetFlat64(rip, input.Gpr[4]);
        for (int k = 0; k < 16; k++) s->Gpr[k] = input.Gpr[k];
        Flags.Set(s, input.Rflags);
        setup?.Invoke(cpu);
        var exit = cpu.Run(100_000);
        var gpr = new ulong[16];
        for (int k = 0; k < 16; k++) gpr[k] = s->Gpr[k];
        string calls = "";
        if (cpu.TierZeroCalls is { } counts)
            for (int c = 0; c < counts.Length; c++) if (counts[c] != 0) calls += $"{(Code)c} x{counts[c]}; ";
        return new Outcome(exit, exit == ExitReason.Exception ? cpu.ExitVector : -1, s->Rip, gpr, Flags.Get(s) & (RFlags.Status | RFlags.DF),
            ram.Span(stackLo, NativeRunner.StackBelow + NativeRunner.StackAbove).ToArray(), calls, ram.Span(memory, memoryLength).ToArray());
    }

    // 32-bit snippets at a low address, so 16-bit branch targets (o16 CALL/RET/JMP wrap EIP to 16 bits) stay in the code.
    const ulong Low32Rip = 0x1000;

    static readonly Dictionary<string, byte[]> Flat32 = new()
    {
        ["loop ecx"] = Asm(32, Low32Rip, a => { var l = a.CreateLabel(); a.Label(ref l); a.add(ebx, ecx); a.loop(l); }),
        // add ebx, ecx; a16 loop (CX counter, ECX's upper half kept): 01 CB 67 E2 FB
        ["a16 loop"] = [0x01, 0xCB, 0x67, 0xE2, 0xFB],
        ["loopne"] = Asm(32, Low32Rip, a => { var l = a.CreateLabel(); a.Label(ref l); a.add(ebx, 1); a.test(bl, 7); a.loopne(l); }),
        ["jecxz"] = Asm(32, Low32Rip, a => { var s = a.CreateLabel(); a.jecxz(s); a.add(ebx, edx); a.Label(ref s); a.add(ebx, 1); }),
        ["enter/leave"] = Asm(32, Low32Rip, a => { a.enter(0x18, 0); a.mov(__dword_ptr[esp], ecx); a.mov(__dword_ptr[ebp - 4], edx); a.leave(); }),
        ["call/ret imm16"] = Asm(32, Low32Rip, a =>
        {
            Label f = a.CreateLabel(), end = a.CreateLabel();
            a.push(eax); a.call(f); a.add(ebx, 1); a.jmp(end);
            a.Label(ref f); a.add(ebx, ecx); a.ret(4);
            a.Label(ref end); a.nop();
        }),
        // o16 call +4 (pushes IP); add ebx, 1; jmp +5; add ebx, ecx; o16 ret 2 (pops IP and 2 bytes); then 16-bit pushes/pops.
        ["o16 call/ret"] = [0x66, 0x6A, 0x07, 0x66, 0xE8, 0x05, 0x00, 0x83, 0xC3, 0x01, 0xEB, 0x06, 0x01, 0xCB, 0x66, 0xC2, 0x02, 0x00,
            0x66, 0x50, 0x66, 0x5A, 0x66, 0xFF, 0x34, 0x24, 0x66, 0x5E, 0xFF, 0x34, 0x24, 0x5F],
        ["popcnt/lzcnt/tzcnt/bsf/bsr/lahf/sahf"] = Asm(32, Low32Rip, a =>
        {
            // Each flag result is read by a SETcc (the flags these leave undefined are left unread); LAHF after a CMP.
            a.popcnt(esi, ecx); a.setz(al); a.lzcnt(edx, ecx); a.setc(ah); a.setz(bl); a.tzcnt(di, cx); a.setc(bh);
            a.bsf(ebp, edx); a.setz(cl); a.bsr(edx, __dword_ptr[esp]); a.setz(ch);
            a.cmp(eax, ebx); a.lahf(); a.xor(ah, 0x41); a.sahf();
        }),
    };

    public static TheoryData<string> Flat32Names() => new(Flat32.Keys);

    [DifferentialTheory]
    [MemberData(nameof(Flat32Names))]
    public void Flat_32_bit_tier_1_matches_tier_0_without_tier_0_calls(string name)
    {
        byte[] code = Flat32[name];
        int failed = 0;
        var report = new StringBuilder();
        for (int k = 0; k < CasesPerSnippet; k++)
        {
            var b = new CaseBuilder(Rng.Mix(0x3232_F10E, (ulong)k), allowDf: false);
            for (int r = 0; r < 16; r++) b.St.Gpr[r] = r < 8 ? (uint)b.St.Gpr[r] : 0;
            b.St.Gpr[4] = 0x8000 - 8 * (ulong)b.R.Next(16);
            // Loop counts small (a zero count would loop 2^32 or 2^16 times); JECXZ sees zero half the time.
            b.St.Gpr[1] = (name == "a16 loop" ? b.St.Gpr[1] & 0xFFFF_0000 : 0) | (uint)b.R.Next(1, 30);
            if (name == "jecxz" && b.R.Percent(50)) b.St.Gpr[1] = 0;
            var t0 = RunAt(code, b.St, 32, Low32Rip, JitOptions.InterpretOnly);
            var t1 = RunAt(code, b.St, 32, Low32Rip, JitOptions.CompileFirst);
            string? diff = t0.Exit != t1.Exit || t0.Rip != t1.Rip || !t0.Gpr.AsSpan().SequenceEqual(t1.Gpr) || t0.Flags != t1.Flags
                || !t0.Stack.AsSpan().SequenceEqual(t1.Stack)
                ? $"tier 0: {t0.Exit} eip 0x{t0.Rip:x} gpr {string.Join(',', t0.Gpr[..8].Select(v => v.ToString("x")))} flags 0x{t0.Flags:x}\n" +
                  $"tier 1: {t1.Exit} eip 0x{t1.Rip:x} gpr {string.Join(',', t1.Gpr[..8].Select(v => v.ToString("x")))} flags 0x{t1.Flags:x}"
                : null;
            Assert.Equal(ExitReason.Hlt, t0.Exit);
            if (diff != null && ++failed <= 3) report.AppendLine($"{name} case {k}:\n{diff}");
        }
        output.WriteLine($"{name}: {CasesPerSnippet} cases, {failed} differ");
        Assert.True(failed == 0, report.ToString());
        var input = new MachineState { Rflags = 0x202 };
        input.Gpr[1] = 3; input.Gpr[4] = 0x8000;
        Assert.Equal("Hlt x1; ", RunAt(code, input, 32, Low32Rip, JitOptions.CompileFirst with { ProfileFallbacks = true }).Calls);
    }
}
