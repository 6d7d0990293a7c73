using DynaSmp.Jit;
using DynaSmp.Machine;
using DynaSmp.Machine.Trace;
using DynaSmp.Tests.Apic;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Storm;

/// <summary>
/// Virtual time in deterministic mode: a guest whose every decision comes from RDTSC and whose vCPUs sleep on the
/// LAPIC timer must replay byte for byte from its seed, and different seeds must give different runs.
/// </summary>
public class VirtualTimeTests
{
    const int Cpus = 4, Rounds = 12;
    const ushort CodeSegment = 0x100; // code at 0x1000, real mode
    const ulong TscOut = 0x9000;      // u64 per vCPU: its last TSC reading
    const ushort HandlerOffset = 0x800;

    /// <summary>Every vCPU, in real mode with x2APIC: Rounds times { t = RDTSC; fixed IPI, vector 0x40 + t % 16, to
    /// vCPU (t / 16) % Cpus; arm the one-shot LAPIC timer for 64 + t % 1024; STI; HLT (woken by the timer or an IPI) }.</summary>
    static Vm Build(int seed, JitOptions jit)
    {
        var vm = new Vm(new VmConfig { Vcpus = Cpus, MemoryBytes = 4 << 20, X2Apic = true, DeterministicSeed = seed, Jit = jit, TraceCapacity = 4096 });
        var a = new Assembler(16);
        Label loop = a.CreateLabel(), park = a.CreateLabel();
        void Wrmsr(uint msr) { a.mov(ecx, msr); a.wrmsr(); }
        a.cli();
        a.xor(ax, ax);
        a.mov(ds, ax);
        a.mov(ecx, 0x1B); a.rdmsr(); a.or(eax, 0xC00); a.wrmsr();   // APIC_BASE: EN | EXTD (x2APIC)
        a.xor(edx, edx);
        a.mov(eax, 0x1FF); Wrmsr(0x80F);                             // SVR: software-enable
        a.mov(eax, 0x30); Wrmsr(0x832);                              // LVT timer: vector 0x30, one-shot
        a.mov(si, Rounds);
        a.Label(ref loop);
        a.rdtsc();
        a.mov(ebx, eax);
        a.shr(eax, 4); a.xor(edx, edx); a.mov(ecx, Cpus); a.div(ecx);   // edx = target
        a.mov(eax, ebx); a.and(eax, 0xF); a.add(eax, 0x40); Wrmsr(0x830); // ICR: fixed, physical, dest in edx
        a.xor(edx, edx);
        a.mov(eax, ebx); a.and(eax, 0x3FF); a.add(eax, 64); Wrmsr(0x838); // timer initial count
        a.sti();
        a.hlt();
        a.cli();
        a.dec(si);
        a.jnz(loop);
        a.mov(ecx, 0x802); a.rdmsr(); a.mov(di, ax); a.shl(di, 3);      // x2APIC ID * 8
        a.rdtsc();
        a.mov(__dword_ptr[di + (ushort)TscOut], eax);
        a.mov(__dword_ptr[di + (ushort)TscOut + 4], edx);
        a.Label(ref park);
        a.hlt();
        a.jmp(park);
        vm.Ram.Write((ulong)CodeSegment << 4, ApicKit.Assemble(a, 0));
        var h = new Assembler(16);                                   // every vector: EOI, IRET
        h.push(eax); h.push(ecx); h.push(edx);
        h.xor(eax, eax); h.xor(edx, edx); h.mov(ecx, 0x80B); h.wrmsr();
        h.pop(edx); h.pop(ecx); h.pop(eax);
        h.iret();
        vm.Ram.Write(((ulong)CodeSegment << 4) + HandlerOffset, ApicKit.Assemble(h, HandlerOffset));
        const ushort handlerOffset = HandlerOffset;
        for (int v = 0x30; v < 0x50; v++)
            vm.Ram.Write((ulong)v * 4, [handlerOffset & 0xFF, handlerOffset >> 8, CodeSegment & 0xFF, CodeSegment >> 8]);
        foreach (var v in vm.Vcpus)
        {
            v.Core.SetReal(CodeSegment, 0, (ushort)(0x7000 + v.Id * 0x100));
            v.Core.ExceptionIntercept = uint.MaxValue;
            if (v.Id != 0) v.SetMpState(MpState.Runnable); // KVM_SET_MP_STATE: the host starts every AP
        }
        return vm;
    }

    static (string Trace, ulong[] Tsc, long Steps) Run(int seed, JitOptions jit)
    {
        using var vm = Build(seed, jit);
        vm.Start();
        Assert.True(vm.WaitForExit(TimeSpan.FromSeconds(30)), $"seed {seed}: did not finish");
        vm.Join();
        Assert.True(vm.ExitKind == VmExitKind.Stopped, $"seed {seed}: {vm.ExitKind} {vm.ExitMessage}");
        var tsc = new ulong[Cpus];
        for (int k = 0; k < Cpus; k++) tsc[k] = BitConverter.ToUInt64(vm.Ram.Span(TscOut + (ulong)k * 8, 8));
        var w = new StringWriter();
        TraceText.Write(w, TraceText.Merged(vm));
        return (w.ToString(), tsc, vm.ScheduleSteps);
    }

    [Fact]
    public void Same_seed_gives_the_same_trace_byte_for_byte_and_different_seeds_differ()
    {
        foreach (var jit in new[] { JitOptions.InterpretOnly, new JitOptions { TierUpThreshold = 1, CompileSynchronously = true } })
        {
            var a = Run(7, jit);
            var b = Run(7, jit);
            var c = Run(8, jit);
            Assert.All(a.Tsc, t => Assert.True(t > 0, "every vCPU finished its rounds and stored a TSC reading"));
            // The timer really ran: vCPUs halted and were woken (a HLT with an IPI already pending does not halt).
            int wakes = a.Trace.Split('\n').Count(l => l.Contains(" WokeFromHalt "));
            Assert.True(wakes >= Cpus, $"{wakes} wake-ups for {Cpus * Rounds} rounds");
            Assert.Equal(a.Trace, b.Trace);
            Assert.Equal(a.Tsc, b.Tsc);
            Assert.Equal(a.Steps, b.Steps);
            Assert.NotEqual(a.Trace, c.Trace);
        }
    }

    [Fact]
    public void Virtual_time_moves_only_with_the_scheduler()
    {
        using var vm = Build(3, JitOptions.InterpretOnly);
        Assert.True(vm.Clock.IsVirtual);
        Assert.Equal(1_000_000_000, vm.Clock.Frequency);
        long before = vm.Clock.Now;
        Thread.Sleep(20);
        Assert.Equal(before, vm.Clock.Now); // host time passing does not move it
        vm.Start();
        Assert.True(vm.WaitForExit(TimeSpan.FromSeconds(30)));
        vm.Join();
        // Each turn costs its retired instructions plus a fixed cost; idle skips add timer waits.
        Assert.True(vm.Clock.Now >= vm.ScheduleSteps * Vm.TurnCostNs, $"clock {vm.Clock.Now} after {vm.ScheduleSteps} turns");
        using var free = new Vm(new VmConfig { Vcpus = 1, MemoryBytes = 4 << 20 });
        Assert.False(free.Clock.IsVirtual);
    }
}
