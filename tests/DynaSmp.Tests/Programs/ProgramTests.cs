using DynaSmp.Jit.Cpu;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Programs;

/// <summary>Whole guest programs (64-bit) run under every tier configuration: calls and deep recursion,
/// memory-heavy loops, block chaining, self-modifying code, exit requests and #UD.</summary>
public unsafe class ProgramTests
{
    public static TheoryData<int> All => Tiers.All;
    public static TheoryData<int> Compiled => Tiers.Compiled;
    public static TheoryData<int> AllAndBackground => new() { Tiers.Interpret, Tiers.CompileFirst, Tiers.Tiered, Tiers.TieredBackground };

    [Theory, MemberData(nameof(All))]
    public void Recursive_fibonacci_with_call_and_ret(int tier)
    {
        // fib(n) = n < 2 ? n : fib(n-1) + fib(n-2); fib(20) = 6765 takes 21891 calls.
        using var g = Guest.Flat64(tier, a =>
        {
            var fib = a.CreateLabel();
            var small = a.CreateLabel();
            a.mov(edi, 20);
            a.call(fib);
            a.hlt();
            a.Label(ref fib);
            a.cmp(rdi, 2);
            a.jb(small);
            a.push(rbx);
            a.push(rdi);
            a.dec(rdi);
            a.call(fib);
            a.mov(rbx, rax);
            a.pop(rdi);
            a.sub(rdi, 2);
            a.call(fib);
            a.add(rax, rbx);
            a.pop(rbx);
            a.ret();
            a.Label(ref small);
            a.mov(rax, rdi);
            a.ret();
        });
        g.RunToHlt();
        Assert.Equal(6765UL, g.Reg(R.Ax));
        Assert.Equal(0x80000UL, g.Reg(R.Sp)); // every CALL's push matched by its RET's pop
    }

    [Theory, MemberData(nameof(All))]
    public void Recursion_five_thousand_deep(int tier)
    {
        // sum(n) = n + sum(n - 1): 5000 nested frames of 16 bytes (return address + saved RDI).
        using var g = Guest.Flat64(tier, a =>
        {
            var sum = a.CreateLabel();
            var zero = a.CreateLabel();
            a.mov(edi, 5000);
            a.call(sum);
            a.hlt();
            a.Label(ref sum);
            a.test(rdi, rdi);
            a.jz(zero);
            a.push(rdi);
            a.dec(rdi);
            a.call(sum);
            a.pop(rdi);
            a.add(rax, rdi);
            a.ret();
            a.Label(ref zero);
            a.xor(eax, eax);
            a.ret();
        });
        g.RunToHlt();
        Assert.Equal(5000UL * 5001 / 2, g.Reg(R.Ax));
        Assert.Equal(0x80000UL, g.Reg(R.Sp));
        // The deepest frame's saved RDI (= 1) sits 5000 * 16 bytes below the initial stack.
        Assert.Equal(1UL, g.Read(0x80000 - 8 - 5000 * 16 + 8, 8));
    }

    [Theory, MemberData(nameof(All))]
    public void Checksum_over_an_array_with_prefix_sums_written_back(int tier)
    {
        const int n = 8192;
        const ulong src = 0x100000, dst = 0x140000;
        using var g = Guest.Flat64(tier, a =>
        {
            var loop = a.CreateLabel();
            a.mov(esi, (uint)src);
            a.mov(edi, (uint)dst);
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.xor(ecx, ecx);
            a.Label(ref loop);
            a.mov(r8, __qword_ptr[rsi + rcx * 8]);
            a.add(rax, r8);
            a.lea(r9, __[r8 + rcx]);
            a.xor(rdx, r9);
            a.mov(__qword_ptr[rdi + rcx * 8], rax);
            a.inc(rcx);
            a.cmp(rcx, n);
            a.jne(loop);
            a.hlt();
        });
        ulong sum = 0, x = 0;
        var prefix = new ulong[n];
        for (int k = 0; k < n; k++)
        {
            ulong v = (ulong)k * 0x9E37_79B9_7F4A_7C15UL ^ ((ulong)k << 7);
            g.WriteU64(src + (ulong)k * 8, v);
            sum += v;
            x ^= v + (ulong)k;
            prefix[k] = sum;
        }
        g.RunToHlt();
        Assert.Equal(sum, g.Reg(R.Ax));
        Assert.Equal(x, g.Reg(R.Dx));
        for (int k = 0; k < n; k += 97) Assert.Equal(prefix[k], g.Read(dst + (ulong)k * 8, 8));
        Assert.Equal(prefix[n - 1], g.Read(dst + (n - 1) * 8, 8));
    }

    const int LoopIterations = 100_000;

    /// <summary>A loop whose body is four blocks (test/jz, odd arm, even arm falling into the latch, latch).</summary>
    static void TwoArmLoop(Assembler a)
    {
        var top = a.CreateLabel();
        var even = a.CreateLabel();
        var latch = a.CreateLabel();
        a.mov(ecx, LoopIterations);
        a.xor(eax, eax);
        a.xor(edx, edx);
        a.Label(ref top);
        a.test(cl, 1);
        a.jz(even);
        a.add(rax, rcx);
        a.jmp(latch);
        a.Label(ref even);
        a.add(rdx, rcx);
        a.Label(ref latch);
        a.dec(ecx);
        a.jnz(top);
        a.hlt();
    }

    [Theory, MemberData(nameof(All))]
    public void Multi_block_loop_is_chained_once_compiled(int tier)
    {
        using var g = Guest.Flat64(tier, TwoArmLoop);
        g.RunToHlt();
        Assert.Equal(50_000UL * 50_000, g.Reg(R.Ax));      // 1 + 3 + ... + 99999
        Assert.Equal(50_000UL * 50_001, g.Reg(R.Dx));      // 2 + 4 + ... + 100000
        if (tier == Tiers.Interpret)
        {
            // Tier 0 returns to the dispatcher after every block: at least one lookup per iteration.
            Assert.True(g.Cpu.DispatcherLookups >= LoopIterations, $"lookups {g.Cpu.DispatcherLookups}");
        }
        else
        {
            Assert.True(g.Cpu.CompiledBlockEntries > 0);
            Assert.True(g.Cpu.DispatcherLookups < LoopIterations / 100, $"lookups {g.Cpu.DispatcherLookups} for {LoopIterations} iterations");
        }
    }

    [Theory, MemberData(nameof(All))]
    public void Self_loop_stays_in_its_block_once_compiled(int tier)
    {
        using var g = Guest.Flat64(tier, a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, LoopIterations);
            a.xor(eax, eax);
            a.Label(ref top);
            a.add(rax, rcx);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal((ulong)LoopIterations * (LoopIterations + 1) / 2, g.Reg(R.Ax));
        Assert.Equal(2UL + 3UL * LoopIterations + 1, g.S->InstructionsRetired); // mov, xor, 3 per iteration, hlt
        if (tier == Tiers.Interpret) Assert.True(g.Cpu.DispatcherLookups >= LoopIterations);
        else Assert.True(g.Cpu.DispatcherLookups < LoopIterations / 100, $"lookups {g.Cpu.DispatcherLookups}");
    }

    [Fact]
    public void Compile_first_never_runs_a_block_in_tier_0()
    {
        // JitOptions.CompileFirst is documented as "compile every block before its first run: translated
        // code only, no tier 0".
        using var g = Guest.Flat64(Tiers.CompileFirst, a =>
        {
            a.mov(eax, 1);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(1UL, g.Reg(R.Ax));
        Assert.Equal(0L, g.Cpu.InterpretedBlocks);
        Assert.Equal(1L, g.Cpu.CompiledBlockEntries);
    }

    [Theory, MemberData(nameof(All))]
    public void Patching_an_immediate_of_a_hot_compiled_block_takes_effect(int tier)
    {
        // The block at `site` runs 199 times with imm32 = 1 (compiled after 50 runs when tiered); the
        // iteration with ECX = 2 stores 1000 into that immediate, so the last iteration must add 1000.
        // SDM Vol. 3A 11.6: a write to code invalidates any cached or prefetched copy of it.
        using var g = Guest.Flat64(tier, a =>
        {
            var site = a.CreateLabel();
            var skip = a.CreateLabel();
            a.lea(rbx, __[site]);
            a.mov(ecx, 200);
            a.xor(edx, edx);
            a.Label(ref site);
            a.mov(eax, 1); // B8 imm32: the immediate is at site + 1
            a.add(edx, eax);
            a.cmp(ecx, 2);
            a.jne(skip);
            a.mov(__dword_ptr[rbx + 1], 1000);
            a.Label(ref skip);
            a.dec(ecx);
            a.jnz(site);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(199UL + 1000, g.Reg(R.Dx));
        if (tier != Tiers.Interpret) Assert.True(g.Cpu.CompiledBlockEntries > 0);
    }

    [Theory, MemberData(nameof(All))]
    public void Patching_a_compiled_subroutine_then_calling_it(int tier)
    {
        // f returns 1 for 200 calls, then the caller patches f's immediate on the same page and calls it again.
        using var g = Guest.Flat64(tier, a =>
        {
            var loop = a.CreateLabel();
            var f = a.CreateLabel();
            a.lea(rbx, __[f]);
            a.mov(ecx, 200);
            a.xor(edx, edx);
            a.Label(ref loop);
            a.call(f);
            a.add(edx, eax);
            a.dec(ecx);
            a.jnz(loop);
            a.mov(__dword_ptr[rbx + 1], 0x1000);
            a.call(f);
            a.add(edx, eax);
            a.hlt();
            a.Label(ref f);
            a.mov(eax, 1);
            a.ret();
        });
        g.RunToHlt();
        Assert.Equal(200UL + 0x1000, g.Reg(R.Dx));
    }

    [Theory, MemberData(nameof(All))]
    public void Store_into_the_next_instruction_of_the_same_block_is_executed(int tier)
    {
        // Straight-line: the first instruction rewrites the low immediate byte of the second.
        // SDM Vol. 3A 11.6: a write that affects a prefetched instruction invalidates the prefetch queue,
        // so the modified instruction is the one executed.
        using var g = Guest.Flat64(tier, a =>
        {
            var target = a.CreateLabel();
            a.lea(rbx, __[target]);
            a.mov(__byte_ptr[rbx + 1], 0x42);
            a.Label(ref target);
            a.mov(eax, 0x1111_1111);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(0x1111_1142UL, g.Reg(R.Ax));
    }

    [Theory, MemberData(nameof(All))]
    public void Compiled_self_loop_that_stores_into_its_own_next_instruction(int tier)
    {
        // One self-looping block; for 99 iterations its store goes to a data page, in the last one (ECX = 1,
        // chosen by CMOVE) it rewrites the low immediate byte of the very next instruction of the same
        // block, which must then add 0x42 instead of 1 (SDM Vol. 3A 11.6).
        using var g = Guest.Flat64(tier, a =>
        {
            var top = a.CreateLabel();
            var target = a.CreateLabel();
            a.lea(rsi, __[target]);
            a.inc(rsi);
            a.mov(edi, 0x20000);
            a.mov(ecx, 100);
            a.xor(edx, edx);
            a.Label(ref top);
            a.mov(rbx, rdi);
            a.cmp(ecx, 1);
            a.cmove(rbx, rsi);
            a.mov(__byte_ptr[rbx], 0x42);
            a.Label(ref target);
            a.mov(eax, 1);
            a.add(edx, eax);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(99UL + 0x42, g.Reg(R.Dx));
        Assert.Equal(0x42UL, g.Read(0x20000, 1));
        if (tier != Tiers.Interpret) Assert.True(g.Cpu.CompiledBlockEntries > 0);
    }

    [Theory, MemberData(nameof(All))]
    public void Self_modifying_loop_rewrites_its_own_immediate_every_iteration(int tier)
    {
        // Each iteration stores CL into the immediate of the next instruction: EDX = 100 + 99 + ... + 1.
        using var g = Guest.Flat64(tier, a =>
        {
            var top = a.CreateLabel();
            var target = a.CreateLabel();
            a.lea(rbx, __[target]);
            a.mov(ecx, 100);
            a.xor(edx, edx);
            a.Label(ref top);
            a.mov(__byte_ptr[rbx + 1], cl);
            a.Label(ref target);
            a.mov(eax, 0);
            a.add(edx, eax);
            a.dec(ecx);
            a.jnz(top);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(5050UL, g.Reg(R.Dx));
    }

    /// <summary>INC keeps CF across a block boundary: the block at "join" is entered with the flags of SUB (borrow) or of
    /// ADD (no carry), which tier 1 holds as a runtime record; INC's CF is read from it (a memory access after INC keeps
    /// CF live) and ADC adds it. 50 of the 100 iterations take the borrowing path.</summary>
    [Theory, MemberData(nameof(All))]
    public void Inc_keeps_the_carry_of_whichever_path_entered_its_block(int tier)
    {
        using var g = Guest.Flat64(tier, a =>
        {
            Label top = a.CreateLabel(), even = a.CreateLabel(), join = a.CreateLabel();
            a.xor(edx, edx);
            a.xor(ecx, ecx);
            a.mov(ebx, 100);
            a.Label(ref top);
            a.mov(eax, ebx);
            a.and(eax, 1);
            a.jz(even);
            a.sub(eax, 2);      // 1 - 2: CF = 1
            a.jmp(join);
            a.Label(ref even);
            a.add(eax, 1);      // 0 + 1: CF = 0
            a.Label(ref join);
            a.inc(ecx);
            a.mov(__dword_ptr[rsp - 8], ecx);
            a.adc(edx, 0);
            a.dec(ebx);
            a.jnz(top);
            a.hlt();
        });
        g.RunToHlt();
        Assert.Equal(50UL, g.Reg(R.Dx));
        Assert.Equal(100UL, g.Reg(R.Cx));
    }

    static void SpinSelf(Assembler a)
    {
        var top = a.CreateLabel();
        a.Label(ref top);
        a.jmp(top);
    }

    static void SpinTwoBlocks(Assembler a)
    {
        var top = a.CreateLabel();
        var mid = a.CreateLabel();
        a.xor(eax, eax); // RESET leaves EDX = the processor signature: start both counters at 0
        a.xor(edx, edx);
        a.Label(ref top);
        a.inc(rax);
        a.jmp(mid);
        a.Label(ref mid);
        a.inc(rdx);
        a.jmp(top);
    }

    [Theory, MemberData(nameof(AllAndBackground))]
    public void Exit_request_stops_a_jmp_self_loop(int tier) => AssertExitRequestStops(tier, SpinSelf, selfLoop: true);

    [Theory, MemberData(nameof(AllAndBackground))]
    public void Exit_request_stops_a_two_block_loop(int tier) => AssertExitRequestStops(tier, SpinTwoBlocks, selfLoop: false);

    /// <summary>A stop that lands after a block's HLT (the HLT has retired, the dispatcher has not yet looked) must
    /// still report the HLT first, as KVM handles the HLT exit before signals; else the vCPU is left RUNNABLE past it.</summary>
    [Theory, MemberData(nameof(AllAndBackground))]
    public void A_stop_after_HLT_reports_the_HLT_first(int tier)
    {
        using var g = Guest.Flat64(tier, a => { a.nop(); a.hlt(); a.nop(); a.hlt(); });
        g.RunToHlt();
        ulong afterHlt = g.Rip;
        // The state a racing stop finds: the second HLT retired (RIP past it, halt pending), a stop request set.
        g.S->Rip = afterHlt + 2; // past NOP; HLT
        g.S->HaltRequested = 1;
        g.Cpu.RequestExit();
        Assert.Equal(ExitReason.Hlt, g.Cpu.Run());
        Assert.Equal(ExitReason.ExitRequested, g.Cpu.Run()); // the stop is still there, and nothing more ran
        Assert.Equal(afterHlt + 2, g.Rip);
    }

    static void AssertExitRequestStops(int tier, Action<Assembler> program, bool selfLoop)
    {
        var g = Guest.Flat64(tier, program);
        var result = (ExitReason)(-1);
        var runner = new Thread(() => result = g.Cpu.Run()) { IsBackground = true, Name = "guest vCPU" };
        runner.Start();
        // Let it spin long enough to be compiled and chained (or self-looping in IL).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        // Translated loops keep their retired count in a local until they leave, so the count is not a progress
        // signal for them: wait for tier-1 entry (or, interpreted, for the count) and then let it spin a little.
        while (Volatile.Read(ref g.S->InstructionsRetired) < 200_000 && Volatile.Read(ref g.Cpu.CompiledBlockEntries) == 0
               && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Thread.Sleep(50);
        g.Cpu.RequestExit();
        bool stopped = runner.Join(TimeSpan.FromSeconds(10)); // hang guard only
        Assert.True(stopped, "Run did not return after RequestExit"); // (the guest is leaked on purpose if it hangs)
        try
        {
            Assert.Equal(ExitReason.ExitRequested, result);
            Assert.True(g.S->InstructionsRetired >= 200_000, $"retired {g.S->InstructionsRetired}");
            // RIP is at an instruction boundary of the loop.
            ulong rip = g.Rip;
            if (selfLoop) Assert.Equal(0x1000UL, rip);
            else
            {
                Assert.True(rip is 0x1004 or 0x1009, $"RIP 0x{rip:x}"); // (2 x xor) inc rax (3) + jmp short (2) | inc rdx
                // The two counters advance in lockstep: RAX = RDX, or RAX = RDX + 1 when stopped between blocks.
                ulong ax = g.Reg(R.Ax), dx = g.Reg(R.Dx);
                Assert.True(ax == dx || ax == dx + 1, $"rax {ax} rdx {dx}");
                Assert.Equal(rip == 0x1004 ? dx : dx + 1, ax);
            }
            // A second Run resumes and can be stopped again.
            ulong before = g.S->InstructionsRetired;
            var second = new Thread(() => result = g.Cpu.Run()) { IsBackground = true };
            result = (ExitReason)(-1);
            second.Start();
            Thread.Sleep(20); // the resumed loop counts its instructions when it leaves (see above)
            g.Cpu.RequestExit();
            Assert.True(second.Join(TimeSpan.FromSeconds(10)), "second Run did not return");
            Assert.Equal(ExitReason.ExitRequested, result);
            Assert.True(g.S->InstructionsRetired > before);
        }
        finally
        {
            if (!runner.IsAlive) g.Dispose();
        }
    }

    public static TheoryData<int, byte[]> Garbage
    {
        get
        {
            var d = new TheoryData<int, byte[]>();
            byte[][] codes =
            [
                [0x0F, 0x0B],             // UD2
                [0x0F, 0xFF, 0xC0],       // UD0 eax, eax
                [0x0F, 0xB9, 0xC0],       // UD1 eax, eax
                [0x06],                   // PUSH ES: invalid in 64-bit mode
                [0xFF, 0xFF],             // FF /7: no such instruction
            ];
            foreach (int tier in new[] { Tiers.Interpret, Tiers.CompileFirst, Tiers.Tiered })
                foreach (var c in codes) d.Add(tier, c);
            return d;
        }
    }

    [Theory, MemberData(nameof(Garbage))]
    public void Undefined_opcode_raises_UD_at_the_faulting_instruction(int tier, byte[] garbage)
    {
        // SDM Vol. 3A 6.15 (#UD): a fault; the saved RIP points at the faulting instruction and the
        // instructions before it in the same block have completed.
        using var g = Guest.Flat64(tier, a =>
        {
            a.mov(eax, 7);  // 5 bytes
            a.nop();        // 1 byte
            a.db(garbage);  // at 0x1006
            a.mov(eax, 9);
            a.hlt();
        });
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(6, g.Cpu.ExitVector);
        Assert.Equal(0x1006UL, g.Rip);
        Assert.Equal(7UL, g.Reg(R.Ax));
    }

    [Theory, MemberData(nameof(All))]
    public void Undefined_opcode_after_a_hot_loop_in_the_same_block(int tier)
    {
        // The loop block is compiled; the fall-through block then holds UD2 after two instructions.
        using var g = Guest.Flat64(tier, a =>
        {
            var top = a.CreateLabel();
            a.mov(ecx, 1000);
            a.Label(ref top);
            a.dec(ecx);
            a.jnz(top);
            a.mov(eax, 5);   // 0x1009 (mov ecx 5 bytes, dec ecx 2, jnz short 2)
            a.inc(eax);      // 0x100e
            a.ud2();         // 0x1010
        });
        Assert.Equal(ExitReason.Exception, g.Run());
        Assert.Equal(6, g.Cpu.ExitVector);
        Assert.Equal(0x1010UL, g.Rip);
        Assert.Equal(6UL, g.Reg(R.Ax));
    }
}
