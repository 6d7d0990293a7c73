using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Jit;

/// <summary>Return-address prediction: compiled CALLs push the return address with an exit slot of the caller's,
/// compiled RETs leave through it when the popped address and the code context match; anything else goes where the
/// stack says, and paging changes forget the predictions whose code they may remap.</summary>
public sealed unsafe class ReturnPredictionTests
{
    const ulong Code = 0x10000, Callee = 0x20000; // the callee on another page: its RET is not a region-internal return

    /// <summary>Runs a loop of <paramref name="iterations"/> calls of <paramref name="callee"/> in flat 64-bit code, every
    /// block compiled before it runs; returns the CPU after HLT.</summary>
    static (ulong Rax, ulong Rbx, long Hits) Run(Action<Assembler> callee, int iterations = 500)
    {
        var main = new Assembler(64);
        var loop = main.CreateLabel();
        main.mov(ecx, iterations);
        main.Label(ref loop);
        main.call(Callee);
        main.inc(ebx); // skipped when the callee moves its return address past it
        main.dec(ecx);
        main.jnz(loop);
        main.hlt();
        var f = new Assembler(64);
        callee(f);
        f.ret();
        using var ram = new GuestRam(1 << 20);
        ram.Write(Code, CodeBytes.Assemble(main, Code));
        ram.Write(Callee, CodeBytes.Assemble(f, Callee));
        using var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), JitOptions.CompileFirst);
        cpu.SetFlat64(Code, 0x8000);
        Assert.Equal(ExitReason.Hlt, cpu.Run(1_000_000));
        Assert.True(cpu.CompiledBlockEntries > 0);
        return (cpu.State->Gpr[0], cpu.State->Gpr[3], cpu.State->RasHits);
    }

    [Fact]
    public void Returns_to_the_call_site_leave_through_the_predicted_slot()
    {
        var (rax, rbx, hits) = Run(f => f.add(eax, 1));
        Assert.Equal(500UL, rax);
        Assert.Equal(500UL, rbx);
        Assert.True(hits >= 400, $"{hits} predicted returns of 500");
    }

    [Fact]
    public void A_return_address_changed_on_the_stack_is_followed_not_the_prediction()
    {
        // add qword [rsp], 2 skips the two-byte INC EBX after the call.
        var (rax, rbx, hits) = Run(f => { f.add(eax, 1); f.add(__qword_ptr[rsp], 2); });
        Assert.Equal(500UL, rax);
        Assert.Equal(0UL, rbx);
        Assert.Equal(0, hits);
    }

    [Fact]
    public void A_paging_change_between_call_and_return_forgets_the_prediction()
    {
        var (rax, rbx, hits) = Run(f => { f.add(eax, 1); f.invlpg(__byte_ptr[rsp]); });
        Assert.Equal(500UL, rax);
        Assert.Equal(500UL, rbx);
        Assert.Equal(0, hits);
    }

    [Fact]
    public void An_INVLPG_far_from_the_code_keeps_the_predictions()
    {
        // A kernel invalidates data pages all the time; a page in another gigabyte cannot map this code.
        var (rax, rbx, hits) = Run(f => { f.add(eax, 1); f.mov(rdx, 0x4000_0000UL); f.invlpg(__byte_ptr[rdx]); });
        Assert.Equal(500UL, rax);
        Assert.Equal(500UL, rbx);
        Assert.True(hits >= 400, $"{hits} predicted returns of 500");
    }
}
