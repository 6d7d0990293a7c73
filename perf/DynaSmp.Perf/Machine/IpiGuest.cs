using System.Diagnostics;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Perf.Machine;

/// <summary>
/// A small VM for IPI measurements. Every vCPU runs flat 64-bit code (paging off, so the LAPIC page is at its
/// physical address) with a GDT and an IDT whose vector 0x40 handler counts into a per-vCPU qword, EOIs and
/// IRETs. vCPU 0 parks (CLI; HLT); the other vCPUs software-enable their LAPIC, STI, then run the chosen body.
/// The host thread plays a sending vCPU by calling <see cref="Vm.SendIpi"/> with vCPU 0 as the source (vCPU 0 is
/// halted for good, so the host is the only writer of its trace ring).
/// </summary>
public sealed unsafe class IpiGuest : IDisposable
{
    public const int Vector = 0x40;
    const ulong Gdt = 0x6000, Idt = 0x3000, Handler = 0x4000, Counters = 0x5000, Code = 0x10_0000, StackTop = 0x80_0000;
    const ulong Apic = 0xFEE0_0000;

    public enum Body
    {
        /// <summary>A tight JMP-to-self: the target is always in translated code when the IPI comes.</summary>
        Spin,
        /// <summary>HLT; JMP back: the target sleeps in vcpu_block between IPIs.</summary>
        Halt,
        /// <summary>CLI; self-IPI; STI; HLT; JMP back: every iteration is a guest exit, an event check and an
        /// injection on one vCPU (the run-loop cost, no host thread wake-up).</summary>
        SelfIpiHalt,
    }

    public Vm Vm { get; }
    readonly ulong* _counters;

    public IpiGuest(int vcpus, Body body, bool trace = true)
    {
        Vm = new Vm(new VmConfig { Vcpus = vcpus, MemoryBytes = 16 << 20, Trace = trace });
        Vm.Ram.Write(Gdt, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0x00AF9A000000FFFFUL), .. BitConverter.GetBytes(0x00CF92000000FFFFUL)]);
        WriteGate(Vector, Handler);
        // Handler: RSI = this vCPU's counter (set once by its main code and never changed), RDI = the LAPIC.
        Put(Handler, a =>
        {
            a.inc(__qword_ptr[rsi]);
            a.mov(__dword_ptr[rdi + 0xB0], 0); // EOI
            a.iretq();
        });
        Put(Code, a =>
        {
            a.cli();
            var park = a.CreateLabel();
            a.Label(ref park);
            a.hlt();
            a.jmp(park);
        });
        ulong main = Code + 0x1000;
        Put(main, a =>
        {
            a.mov(rdi, Apic);
            a.mov(__dword_ptr[rdi + 0xF0], 0x1FF); // SVR: software-enable the LAPIC (fixed IPIs are dropped otherwise)
            var loop = a.CreateLabel();
            switch (body)
            {
                case Body.Spin:
                    a.sti();
                    a.Label(ref loop);
                    a.jmp(loop);
                    break;
                case Body.Halt:
                    a.sti();
                    a.Label(ref loop);
                    a.hlt();
                    a.jmp(loop);
                    break;
                case Body.SelfIpiHalt:
                    a.Label(ref loop);
                    a.cli();
                    a.mov(__dword_ptr[rdi + 0x300], 0x4_4000 | Vector); // shorthand self, fixed, assert
                    a.sti();
                    a.hlt(); // in the STI shadow: the self-IPI wakes it (HLT exit, then injection)
                    a.jmp(loop);
                    break;
            }
        });
        for (int k = 0; k < vcpus; k++)
        {
            var v = Vm.Vcpus[k];
            v.Core.SetFlat64(k == 0 ? Code : main, StackTop - (ulong)k * 0x1_0000);
            CpuState* s = v.Core.State;
            s->GdtrBase = Gdt; s->GdtrLimit = 3 * 8 - 1;
            s->IdtrBase = Idt; s->IdtrLimit = 256 * 16 - 1;
            s->Gpr[6] = Counters + (ulong)k * 64; // RSI: one cache line each
            v.Core.ExceptionIntercept = 0;
            if (k != 0) v.SetMpState(MpState.Runnable); // KVM_SET_MP_STATE before the first KVM_RUN
        }
        _counters = (ulong*)(Vm.Ram.Base + Counters);
        Vm.Start();
        if (!WaitFor(() => Vm.Vcpus[0].MpState == MpState.Halted, TimeSpan.FromSeconds(10)))
            throw new InvalidOperationException("vCPU 0 did not park");
        // A fixed IPI sent before the target's SVR write is dropped (APIC software-disabled): wait for it.
        for (int k = 1; k < vcpus; k++)
        {
            var apic = Vm.Vcpus[k].Apic;
            if (!WaitFor(() => apic.SoftwareEnabled, TimeSpan.FromSeconds(10))) throw new InvalidOperationException($"vCPU {k} did not enable its LAPIC");
        }
    }

    /// <summary>Interrupts vCPU <paramref name="k"/> has taken so far.</summary>
    public ulong Count(int k) => Volatile.Read(ref _counters[k * 8]);

    /// <summary>A fixed, edge, physical-destination IPI from "vCPU 0" (the host thread) to vCPU <paramref name="target"/>.</summary>
    public void Send(int target) => Vm.SendIpi(Vm.Vcpus[0], new IcrWrite(0x4000 | Vector, (uint)target));

    /// <summary>Sends one IPI and spins until the target's handler has counted it. Returns the host ticks taken.</summary>
    public long SendAndWait(int target)
    {
        ulong before = Count(target);
        long t0 = Stopwatch.GetTimestamp();
        Send(target);
        long spins = 0;
        while (Count(target) == before)
        {
            if (++spins > 2_000_000_000) throw new InvalidOperationException($"vCPU {target} never took the IPI (state {Vm.Vcpus[target].MpState}, {Vm.ExitKind} {Vm.ExitMessage})");
        }
        return Stopwatch.GetTimestamp() - t0;
    }

    /// <summary>Waits (without timing it) until vCPU <paramref name="k"/> is halted and asleep in vcpu_block.</summary>
    public void WaitAsleep(int k)
    {
        var v = Vm.Vcpus[k];
        var spin = new SpinWait();
        while (v.MpState != MpState.Halted || !v.Sleeping)
        {
            if (Vm.StopRequested) throw new InvalidOperationException($"VM stopped: {Vm.ExitKind} {Vm.ExitMessage}");
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    public static bool WaitFor(Func<bool> condition, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < timeout) { if (condition()) return true; Thread.Sleep(1); }
        return condition();
    }

    void WriteGate(int vector, ulong handler)
    {
        ulong low = (handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | (((handler >> 16) & 0xFFFF) << 48);
        Vm.Ram.Write(Idt + (ulong)vector * 16, [.. BitConverter.GetBytes(low), .. BitConverter.GetBytes(handler >> 32)]);
    }

    void Put(ulong address, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        Vm.Ram.Write(address, CodeBytes.Assemble(a, address));
    }

    public void Dispose() => Vm.Dispose();
}
