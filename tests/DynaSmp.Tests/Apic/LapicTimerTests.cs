using System.Diagnostics;
using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Apic;

/// <summary>The LAPIC timer (SDM Vol. 3A 11.5.4): one-shot, periodic and TSC-deadline modes, the divider,
/// masking, and a halted vCPU woken by its timer interrupt.</summary>
public unsafe class LapicTimerTests
{
    const int Svr = 0xF0, LvtTimer = 0x320, Initial = 0x380, Current = 0x390, Divide = 0x3E0, Eoi = 0xB0;
    const int Vector = 0x40;

    static Vm NewVm() => new(new VmConfig { Vcpus = 1, MemoryBytes = 4 << 20 });

    static bool IrrHas(DynaSmp.Machine.Apic.Lapic apic, int v) => (apic.ReadRegister(0x200 + (v >> 5) * 0x10) & (1u << (v & 31))) != 0;

    static void SpinFor(TimeSpan t)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < t) Thread.SpinWait(50);
    }

    [Fact]
    public void One_shot_fires_once_into_the_IRR_and_counts_down_to_zero()
    {
        using var vm = NewVm();
        var apic = vm.Vcpus[0].Apic;
        apic.WriteRegister(Svr, 0x1FF);                 // software-enable
        apic.WriteRegister(Divide, 0xB);                // divide by 1
        apic.WriteRegister(LvtTimer, Vector);           // one-shot, unmasked
        long armedAt = Stopwatch.GetTimestamp();
        apic.WriteRegister(Initial, 200_000_000);       // 200 ms at the 1 GHz timer clock: a busy host cannot outrun it
        Assert.True(apic.ReadRegister(Current) is > 0 and <= 200_000_000);
        apic.PollTimer(armedAt);
        Assert.False(IrrHas(apic, Vector));              // not yet
        SpinFor(TimeSpan.FromMilliseconds(201));
        apic.PollTimer(Stopwatch.GetTimestamp());
        Assert.True(IrrHas(apic, Vector));
        Assert.Equal(0u, apic.ReadRegister(Current));
        Assert.Equal(Vector, apic.Acknowledge());
        apic.WriteRegister(Eoi, 0);
        SpinFor(TimeSpan.FromMilliseconds(3));
        apic.PollTimer(Stopwatch.GetTimestamp());
        Assert.False(IrrHas(apic, Vector));              // one-shot: no second interrupt
        Assert.Equal(long.MaxValue, apic.TimerDeadline);
    }

    [Fact]
    public void Periodic_rearms_after_each_expiry()
    {
        using var vm = NewVm();
        var apic = vm.Vcpus[0].Apic;
        apic.WriteRegister(Svr, 0x1FF);
        apic.WriteRegister(Divide, 0xB);
        apic.WriteRegister(LvtTimer, Vector | (1 << 17)); // periodic
        apic.WriteRegister(Initial, 1_000_000);            // 1 ms
        for (int k = 0; k < 3; k++)
        {
            SpinFor(TimeSpan.FromMilliseconds(1.5));
            apic.PollTimer(Stopwatch.GetTimestamp());
            Assert.True(IrrHas(apic, Vector), $"period {k}");
            Assert.Equal(Vector, apic.Acknowledge());
            apic.WriteRegister(Eoi, 0);
            Assert.NotEqual(long.MaxValue, apic.TimerDeadline); // re-armed
        }
        apic.WriteRegister(Initial, 0); // a zero initial count stops it
        Assert.Equal(long.MaxValue, apic.TimerDeadline);
    }

    [Fact]
    public void Divider_scales_the_period()
    {
        using var vm = NewVm();
        var apic = vm.Vcpus[0].Apic;
        apic.WriteRegister(Svr, 0x1FF);
        apic.WriteRegister(LvtTimer, Vector);
        apic.WriteRegister(Divide, 0x3);   // 011b: divide by 16
        AssertDueAfter(apic, 1000, 16.0);  // 16 us
        apic.WriteRegister(Divide, 0xB);   // 1011b: divide by 1
        AssertDueAfter(apic, 1000, 1.0);   // 1 us
    }

    /// <summary>The timer falls due <paramref name="us"/> after the write of <paramref name="initial"/>. The write's moment
    /// is bracketed by host clock reads, and the period must lie inside the bracket (one clock tick either way). A host
    /// preemption inside the bracket only widens it, so it is taken again until it is narrower than 2 us.</summary>
    static void AssertDueAfter(DynaSmp.Machine.Apic.Lapic apic, uint initial, double us)
    {
        double tick = 1e6 / Stopwatch.Frequency, lo, hi;
        int attempts = 0;
        do
        {
            long before = Stopwatch.GetTimestamp();
            apic.WriteRegister(Initial, initial);
            long after = Stopwatch.GetTimestamp();
            long deadline = apic.TimerDeadline;
            apic.WriteRegister(Initial, 0);
            lo = (deadline - after) * tick;
            hi = (deadline - before) * tick;
        } while (hi - lo >= 2.0 && ++attempts < 1000);
        Assert.InRange(us, lo - tick, hi + tick);
    }

    [Fact]
    public void A_masked_timer_sets_nothing()
    {
        using var vm = NewVm();
        var apic = vm.Vcpus[0].Apic;
        apic.WriteRegister(Svr, 0x1FF);
        apic.WriteRegister(Divide, 0xB);
        apic.WriteRegister(LvtTimer, Vector | 0x1_0000);
        apic.WriteRegister(Initial, 1000);
        SpinFor(TimeSpan.FromMilliseconds(1));
        apic.PollTimer(Stopwatch.GetTimestamp());
        Assert.False(IrrHas(apic, Vector));
    }

    [Fact]
    public void TSC_deadline_fires_when_the_TSC_passes_the_deadline_and_disarms()
    {
        using var vm = NewVm();
        var v = vm.Vcpus[0];
        var apic = v.Apic;
        apic.WriteRegister(Svr, 0x1FF);
        apic.WriteRegister(LvtTimer, Vector | (2 << 17)); // TSC-deadline mode
        apic.WriteRegister(Initial, 123);                  // ignored in TSC-deadline mode
        Assert.Equal(long.MaxValue, apic.TimerDeadline);
        ulong tscPerMs = (ulong)(Stopwatch.Frequency / 1000);
        // A deadline a second away is not due at the next poll even on a host busy enough to stall this thread.
        apic.TscDeadline = v.Core.ReadTsc() + 1000 * tscPerMs;
        apic.PollTimer(Stopwatch.GetTimestamp());
        Assert.False(IrrHas(apic, Vector));
        ulong deadline = v.Core.ReadTsc() + tscPerMs;
        apic.TscDeadline = deadline; // re-arming replaces the deadline (SDM 11.5.4.1)
        while (v.Core.ReadTsc() < deadline) Thread.SpinWait(64);
        apic.PollTimer(Stopwatch.GetTimestamp());
        Assert.True(IrrHas(apic, Vector));
        Assert.Equal(0UL, apic.TscDeadline); // disarmed after firing (SDM 11.5.4.1)
    }

    [Fact]
    public void Switching_into_or_out_of_TSC_deadline_mode_disarms_the_timer()
    {
        using var vm = NewVm();
        var v = vm.Vcpus[0];
        var apic = v.Apic;
        apic.WriteRegister(Svr, 0x1FF);
        apic.WriteRegister(Divide, 0xB);
        ulong far = v.Core.ReadTsc() + (ulong)Stopwatch.Frequency;

        // Masking in the same mode keeps the deadline; leaving the mode and coming back finds it disarmed (KVM's
        // apic_update_lvtt).
        apic.WriteRegister(LvtTimer, Vector | (2 << 17));
        apic.TscDeadline = far;
        apic.WriteRegister(LvtTimer, Vector | (2 << 17) | 0x1_0000);
        Assert.Equal(far, apic.TscDeadline);
        apic.WriteRegister(LvtTimer, Vector);
        apic.WriteRegister(LvtTimer, Vector | (2 << 17));
        Assert.Equal(0UL, apic.TscDeadline);
        Assert.Equal(long.MaxValue, apic.NextTimerEvent(Stopwatch.GetTimestamp()));

        // A running one-shot count stops when the timer enters TSC-deadline mode, and stays stopped after it leaves.
        apic.WriteRegister(LvtTimer, Vector);
        apic.WriteRegister(Initial, 200_000_000);
        Assert.NotEqual(long.MaxValue, apic.TimerDeadline);
        apic.WriteRegister(LvtTimer, Vector | (2 << 17));
        apic.WriteRegister(Initial, 123); // ignored in TSC-deadline mode
        apic.WriteRegister(LvtTimer, Vector);
        Assert.Equal(0u, apic.ReadRegister(Initial));
        Assert.Equal(0u, apic.ReadRegister(Current));
        Assert.Equal(long.MaxValue, apic.TimerDeadline);

        // Between one-shot and periodic the count keeps running.
        apic.WriteRegister(Initial, 200_000_000);
        apic.WriteRegister(LvtTimer, Vector | (1 << 17));
        Assert.Equal(200_000_000u, apic.ReadRegister(Initial));
        Assert.NotEqual(long.MaxValue, apic.TimerDeadline);
    }

    const ulong Flag = 0x5000;

    /// <summary>A guest that arms a one-shot timer of <paramref name="initialCount"/> ticks (divide by 1), enables
    /// interrupts and halts; the handler sets Flag, and the code after the HLT copies it to Flag + 8 and parks.</summary>
    static Vcpu TimerWakeGuest(Vm vm, uint initialCount)
    {
        const ulong Main = 0x1000, Handler = 0x2000, Idt = 0x3000, Gdt = 0x6000, Apic = 0xFEE0_0000;
        vm.Ram.Write(Gdt, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0x00AF9A000000FFFFUL), .. BitConverter.GetBytes(0x00CF92000000FFFFUL)]);
        ulong low = (Handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | (((Handler >> 16) & 0xFFFF) << 48);
        vm.Ram.Write(Idt + Vector * 16, [.. BitConverter.GetBytes(low), .. BitConverter.GetBytes(0UL)]);
        Put(vm, Handler, a =>
        {
            a.mov(__qword_ptr[Flag], 1);
            a.mov(rdi, Apic);
            a.mov(__dword_ptr[rdi + Eoi], 0);
            a.iretq();
        });
        Put(vm, Main, a =>
        {
            a.mov(rdi, Apic);
            a.mov(__dword_ptr[rdi + Svr], 0x1FF);
            a.mov(__dword_ptr[rdi + Divide], 0xB);
            a.mov(__dword_ptr[rdi + LvtTimer], Vector);
            a.mov(__dword_ptr[rdi + Initial], initialCount);
            a.sti();
            a.hlt();                                      // sleeps until the timer interrupt
            a.mov(rax, __qword_ptr[Flag]);
            a.mov(__qword_ptr[Flag + 8], rax);
            var park = a.CreateLabel();
            a.cli();
            a.Label(ref park);
            a.hlt();
            a.jmp(park);
        });
        var v = vm.Vcpus[0];
        v.Core.SetFlat64(Main, 0x8000);
        v.Core.ExceptionIntercept = uint.MaxValue;
        v.Core.State->GdtrBase = Gdt; v.Core.State->GdtrLimit = 23;
        v.Core.State->IdtrBase = Idt; v.Core.State->IdtrLimit = 256 * 16 - 1;
        return v;
    }

    static ulong Read(Vm vm, ulong address) => BitConverter.ToUInt64(vm.Ram.Span(address, 8));

    /// <summary>A guest arms a one-shot timer, enables interrupts and halts: the vCPU thread sleeps with a
    /// timeout, the timer fires, the handler runs and the guest continues after the HLT.</summary>
    [Fact]
    public void A_halted_vCPU_is_woken_by_its_timer()
    {
        using var vm = NewVm();
        var v = TimerWakeGuest(vm, 5_000_000); // 5 ms
        vm.Start();
        var sw = Stopwatch.StartNew();
        while (Read(vm, Flag + 8) == 0 && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        vm.Join();
        Assert.Equal(1UL, Read(vm, Flag + 8)); // the handler ran before the code after HLT
        Assert.True(v.Halts >= 1);
        Assert.True(v.Wakeups >= 1);
    }

    /// <summary>The machine's timer thread kicks a vCPU at each deadline, and on a busy host that kick can land late,
    /// after the vCPU already took the interrupt and halted again. The stale request must not stop the halted vCPU
    /// from polling its timer (it once did: the vCPU spun with the request set and the timer was never looked at
    /// again, which hung Linux SMP boots with every vCPU idle).</summary>
    [Fact]
    public void A_request_that_arrives_while_halted_does_not_stop_the_timer_from_waking_the_vCPU()
    {
        using var vm = NewVm();
        var v = TimerWakeGuest(vm, 300_000_000); // 300 ms: time to halt and take the stale request first
        vm.Start();
        var sw = Stopwatch.StartNew();
        while (v.MpState != MpState.Halted && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        Assert.Equal(MpState.Halted, v.MpState);
        bool timerStillPending = Read(vm, Flag) == 0;
        v.RequestEvent(); // the late kick: nothing for the vCPU to take
        while (Read(vm, Flag + 8) == 0 && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        vm.Stop(VmExitKind.Timeout, "test over");
        vm.Join();
        Assert.True(timerStillPending, "the host was too slow: the timer fired before the stale request could be sent");
        Assert.Equal(1UL, Read(vm, Flag + 8));
    }

    static void Put(Vm vm, ulong address, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        vm.Ram.Write(address, DynaSmp.Jit.CodeBytes.Assemble(a, address));
    }
}
