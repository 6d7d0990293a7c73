using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// Tier 1's inline atomics (XCHG with memory, LOCK ALU, LOCK BTS/BTR/BTC, XADD, CMPXCHG, CMPXCHG8B) on the edges the random
/// differential cases keep away from: an operand crossing a page (the host atomic is skipped and tier 0 runs the
/// instruction), and a flat 32-bit operand past 4 GiB (#GP before anything changes). Tier 0 is the oracle; the
/// host-CPU groups (XaddCmpxchg, MovLeaXchg, Alu with random LOCK) cover the values. The tier-0 call count shows
/// which path tier 1 took, so a test cannot pass by never using the inline atomic.
/// </summary>
[Collection("Differential")]
public sealed unsafe class AtomicTierTests
{
    sealed record Outcome(ExitReason Exit, int Vector, ulong Rip, ulong[] Gpr, ulong Flags, byte[] Buffer, string TierZeroCalls);

    static readonly JitOptions Profiled = JitOptions.CompileFirst with { ProfileFallbacks = true };

    static Outcome Run(byte[] code, MachineState input, bool compiled, bool flat32)
    {
        using var ram = DiffHarness.NewRam();
        ram.Write(NativeRunner.BufferAddress, InitialBuffer());
        return EmulatedRun.Run(ram, code, input, compiled, flat32, 100, (cpu, exit) =>
        {
            CpuState* s = cpu.State;
            var gpr = new ulong[16];
            for (int k = 0; k < 16; k++) gpr[k] = s->Gpr[k];
            string calls = "";
            if (cpu.TierZeroCalls is { } counts)
                for (int c = 0; c < counts.Length; c++) if (counts[c] != 0) calls += $"{(Code)c} x{counts[c]}; ";
            return new Outcome(exit, exit == ExitReason.Exception ? cpu.ExitVector : -1, s->Rip, gpr, DynaSmp.Jit.Cpu.Flags.Get(s) & RFlags.Status,
                ram.Span(NativeRunner.BufferAddress, NativeRunner.BufferSize).ToArray(), calls);
        }, compiledOptions: Profiled);
    }

    static byte[] InitialBuffer()
    {
        var buffer = new byte[NativeRunner.BufferSize];
        for (int k = 0; k < buffer.Length; k++) buffer[k] = (byte)(k * 37 + 11);
        return buffer;
    }

    static byte[] Assemble(int bits, Action<Assembler> body)
    {
        var a = new Assembler(bits);
        a.add(__dword_ptr[ebx + 0x80], 0); // a plain store fills the write TLB for the operand's page (the next one when crossing)
        body(a);
        var w = new CodeBytes();
        a.Assemble(w, NativeRunner.TestRip);
        return w.ToArray();
    }

    public static TheoryData<string> Forms() => new(Atomics.Keys);

    // Operand at [EBX]; EAX/EDX the expected value (CMPXCHG/8B), ECX/ESI sources. Each form ends with SETcc/ADC so a
    // wrong flag changes a register as well as the compared flags.
    static readonly Dictionary<string, Action<Assembler>> Atomics = new()
    {
        ["xchg"] = a => a.xchg(__dword_ptr[ebx], ecx),
        ["lock xadd"] = a => { a.@lock.xadd(__dword_ptr[ebx], ecx); a.setc(dl); },
        ["lock add"] = a => { a.@lock.add(__dword_ptr[ebx], ecx); a.setc(dl); },
        ["lock sub imm"] = a => { a.@lock.sub(__dword_ptr[ebx], 0x1234567); a.setb(dl); },
        ["lock or word"] = a => { a.@lock.or(__word_ptr[ebx], cx); a.sets(dl); },
        ["lock xor byte"] = a => { a.@lock.xor(__byte_ptr[ebx], cl); a.setp(dl); },
        ["lock inc"] = a => { a.stc(); a.@lock.inc(__dword_ptr[ebx]); a.adc(esi, 0); },
        ["lock neg"] = a => { a.@lock.neg(__dword_ptr[ebx]); a.setc(dl); },
        ["lock adc"] = a => { a.stc(); a.@lock.adc(__dword_ptr[ebx], ecx); a.setc(dl); },
        ["lock bts"] = a => { a.@lock.bts(__dword_ptr[ebx], 5); a.setc(dl); },
        ["lock btr word"] = a => { a.@lock.btr(__word_ptr[ebx], 14); a.setc(dl); },
        ["lock btc"] = a => { a.@lock.btc(__dword_ptr[ebx], 31); a.setc(dl); },
        ["lock cmpxchg hit"] = a => { a.mov(eax, __dword_ptr[ebx]); a.@lock.cmpxchg(__dword_ptr[ebx], ecx); a.setz(dl); },
        ["lock cmpxchg miss"] = a => { a.@lock.cmpxchg(__dword_ptr[ebx], ecx); a.setz(dl); },
        ["lock cmpxchg8b hit"] = a => { a.mov(eax, __dword_ptr[ebx]); a.mov(edx, __dword_ptr[ebx + 4]); a.@lock.cmpxchg8b(__qword_ptr[ebx]); a.setz(cl); },
        ["lock cmpxchg8b miss"] = a => { a.@lock.cmpxchg8b(__qword_ptr[ebx]); a.setz(cl); },
    };

    static MachineState Input(ulong operand)
    {
        var st = new MachineState();
        st.Gpr[0] = 0x1111_2222; st.Gpr[1] = 0x8765_4321; st.Gpr[2] = 0x3333_4444; st.Gpr[3] = operand;
        st.Gpr[4] = NativeRunner.StackTop; st.Gpr[6] = 0x7FFF_FFFF;
        return st;
    }

    static void AssertSame(Outcome t0, Outcome t1)
    {
        Assert.Equal((t0.Exit, t0.Vector, t0.Rip), (t1.Exit, t1.Vector, t1.Rip));
        Assert.Equal(t0.Gpr, t1.Gpr);
        Assert.Equal(t0.Flags, t1.Flags);
        Assert.Equal(t0.Buffer, t1.Buffer);
    }

    [DifferentialTheory]
    [MemberData(nameof(Forms))]
    public void Inline_on_ram_and_through_tier_0_across_a_page(string form)
    {
        foreach (int bits in new[] { 32, 64 })
        {
            var code = Assemble(bits, Atomics[form]);
            // Within a page: the host atomic, no tier-0 call.
            var inside = Input(NativeRunner.BufferAddress + 0x40);
            var t0 = Run(code, inside, compiled: false, flat32: bits == 32);
            var t1 = Run(code, inside, compiled: true, flat32: bits == 32);
            AssertSame(t0, t1);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
            Assert.Equal("Hlt x1; ", t1.TierZeroCalls);
            // The operand changed unless the compare failed (CMPXCHG then writes back what it read).
            Assert.Equal(!form.Contains("miss"), !t1.Buffer.AsSpan(0x40, 8).SequenceEqual(InitialBuffer().AsSpan(0x40, 8)));

            // Crossing into the next page: the TLB misses, tier 0 runs it (exact), the result is the same.
            var crossing = Input(NativeRunner.BufferAddress + 0xFFE);
            t0 = Run(code, crossing, compiled: false, flat32: bits == 32);
            t1 = Run(code, crossing, compiled: true, flat32: bits == 32);
            AssertSame(t0, t1);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
            Assert.Matches("^[A-Za-z0-9_]+ x1; $", t1.TierZeroCalls.Replace("Hlt x1; ", "")); // besides HLT, one call: the atomic
        }
    }

    /// <summary>A page that only atomics write: the first LOCK CMPXCHG misses the write TLB and runs in tier 0, which fills
    /// the TLB as tier 0's stores do; the other seven run inline. Before, every one of them was a tier-0 call.</summary>
    [DifferentialFact]
    public void A_page_only_atomics_write_is_filled_by_the_first_and_hit_by_the_rest()
    {
        foreach (int bits in new[] { 32, 64 })
        {
            var a = new Assembler(bits);
            var loop = a.CreateLabel();
            a.Label(ref loop);
            if (bits == 64) a.@lock.cmpxchg(__dword_ptr[rbx], ecx); else a.@lock.cmpxchg(__dword_ptr[ebx], ecx);
            a.dec(edi);
            a.jnz(loop);
            a.hlt();
            var w = new CodeBytes();
            a.Assemble(w, NativeRunner.TestRip);
            var input = Input(NativeRunner.BufferAddress + 0x40);
            input.Gpr[7] = 8;
            var t0 = Run(w.ToArray(), input, compiled: false, flat32: bits == 32);
            var t1 = Run(w.ToArray(), input, compiled: true, flat32: bits == 32);
            AssertSame(t0, t1);
            Assert.Equal(ExitReason.Hlt, t1.Exit);
            Assert.Contains("Cmpxchg_rm32_r32 x1; ", t1.TierZeroCalls);
        }
    }

    /// <summary>Flat 32-bit: an operand whose last byte passes 4 GiB raises #GP(0) with nothing changed, in both tiers.</summary>
    [DifferentialTheory]
    [MemberData(nameof(Forms))]
    public void Past_4_GiB_raises_GP_precisely(string form)
    {
        var code = Assemble(32, Atomics[form]);
        if (form.Contains("byte")) return; // a byte operand cannot cross 4 GiB
        var input = Input(0xFFFF_FFFF);
        var t0 = Run(code, input, compiled: false, flat32: true);
        var t1 = Run(code, input, compiled: true, flat32: true);
        Assert.Equal(ExitReason.Exception, t0.Exit);
        Assert.Equal(Vector.GP, t1.Vector);
        AssertSame(t0, t1);
        Assert.Equal(input.Gpr[3], t1.Gpr[3]);
    }

    /// <summary>CMPXCHG16B (64-bit only, so outside <see cref="Forms"/>): inline on an aligned operand, hit and miss, locked
    /// and not; a misaligned operand raises #GP(0) with nothing changed. Tier 0 is the oracle; the host-CPU group
    /// XaddCmpxchg covers random values.</summary>
    [DifferentialTheory]
    [InlineData("lock hit", 0x40)]
    [InlineData("lock miss", 0x40)]
    [InlineData("hit", 0x80)]
    [InlineData("lock misaligned", 0x48)]
    public void Cmpxchg16b_inline_and_GP_when_misaligned(string form, int offset)
    {
        var a = new Assembler(64);
        a.add(__dword_ptr[rbx + 0x80], 0);
        if (form.Contains("hit")) { a.mov(rax, __qword_ptr[rbx]); a.mov(rdx, __qword_ptr[rbx + 8]); }
        if (form.Contains("lock")) a.@lock.cmpxchg16b(__xmmword_ptr[rbx]); else a.cmpxchg16b(__xmmword_ptr[rbx]);
        a.setz(sil);
        var w = new CodeBytes();
        a.Assemble(w, NativeRunner.TestRip);
        byte[] code = w.ToArray();
        var input = Input(NativeRunner.BufferAddress + (ulong)offset);
        var t0 = Run(code, input, compiled: false, flat32: false);
        var t1 = Run(code, input, compiled: true, flat32: false);
        AssertSame(t0, t1);
        if (form.Contains("misaligned"))
        {
            Assert.Equal((ExitReason.Exception, Vector.GP), (t1.Exit, t1.Vector));
            Assert.Equal(InitialBuffer(), t1.Buffer);
            return;
        }
        Assert.Equal(ExitReason.Hlt, t1.Exit);
        Assert.Equal("Hlt x1; ", t1.TierZeroCalls);
        Assert.Equal(form.Contains("hit") ? 1UL : 0UL, t1.Gpr[6] & 0xFF);
        Assert.Equal(!form.Contains("miss"), !t1.Buffer.AsSpan(offset, 16).SequenceEqual(InitialBuffer().AsSpan(offset, 16)));
    }
}
