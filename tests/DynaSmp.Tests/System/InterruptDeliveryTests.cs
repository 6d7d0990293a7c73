using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>External interrupts and NMIs injected by the machine: RFLAGS.IF, the STI shadow and NMI blocking
/// until IRET (SDM Vol. 3A 6.7.1 "Handling Multiple NMIs", 6.8.3 "Masking Exceptions and Interrupts When
/// Switching Stacks", STI instruction page).</summary>
public unsafe class InterruptDeliveryTests
{
    const ulong Gdt = 0x6000, Idt = 0x3000, IntHandler = 0x4000, NmiHandler = 0x4400, Main = 0x1000, Data = 0x5000;
    const int IntVector = 0x40;

    public static TheoryData<int> Tiers => new() { 0, 1, 2 };

    sealed class OneShotController(int vector) : IInterruptController
    {
        public int Vector = vector;
        public int Acknowledge() { int v = Vector; Vector = -1; return v; }
    }

    /// <summary>Port 0x80 writes (from the NMI handler) record the handler count and raise one more NMI.</summary>
    sealed class NmiBus(GuestRam ram) : IGuestBus
    {
        public CpuCore? Cpu;
        public readonly List<ulong> CountsSeen = new();
        public ulong MmioRead(ulong physical, int size) => 0;
        public void MmioWrite(ulong physical, int size, ulong value) { }
        public uint PortIn(ushort port, int size) => 0;
        public void PortOut(ushort port, int size, uint value)
        {
            CountsSeen.Add(BitConverter.ToUInt64(ram.Span(Data + 8, 8)));
            if (CountsSeen.Count == 1) Interlocked.Exchange(ref Cpu!.State->NmiPending, 1);
        }
    }

    static (GuestRam Ram, CpuCore Cpu) Machine(int tier, Action<Assembler> main, IGuestBus? bus = null, GuestRam? ram = null)
    {
        var options = tier switch { 0 => JitOptions.InterpretOnly, 1 => JitOptions.CompileFirst, _ => new JitOptions { CompileSynchronously = true } };
        ram ??= new GuestRam(1 << 20);
        ram.Write(Gdt, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0x00AF9A000000FFFFUL), .. BitConverter.GetBytes(0x00CF92000000FFFFUL)]);
        WriteGate(ram, IntVector, IntHandler);
        WriteGate(ram, Vector.NMI, NmiHandler);
        Put(ram, IntHandler, a =>
        {
            a.mov(rbx, __qword_ptr[Data + 0x10]); a.mov(__qword_ptr[Data + 0x18], rbx); // what the shadowed instruction left
            a.inc(__qword_ptr[Data]);
            a.iretq();
        });
        Put(ram, NmiHandler, a =>
        {
            a.@out(0x80, al);               // the test bus raises a second NMI here, inside the handler
            a.inc(__qword_ptr[Data + 8]);
            a.iretq();
        });
        Put(ram, Main, main);
        var cpu = new CpuCore(ram, bus ?? EmptyBus.Instance, new BlockCache(ram), options);
        cpu.SetFlat64(Main, 0x8000);
        CpuState* s = cpu.State;
        s->GdtrBase = Gdt; s->GdtrLimit = 3 * 8 - 1;
        s->IdtrBase = Idt; s->IdtrLimit = 256 * 16 - 1;
        cpu.ExceptionIntercept = 0;
        return (ram, cpu);
    }

    static void WriteGate(GuestRam ram, int vector, ulong handler)
    {
        ulong low = (handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | (((handler >> 16) & 0xFFFF) << 48);
        ram.Write(Idt + (ulong)vector * 16, [.. BitConverter.GetBytes(low), .. BitConverter.GetBytes(handler >> 32)]);
    }

    static void Put(GuestRam ram, ulong address, Action<Assembler> body)
    {
        var a = new Assembler(64);
        body(a);
        ram.Write(address, CodeBytes.Assemble(a, address));
    }

    static ulong Q(GuestRam ram, ulong a) => BitConverter.ToUInt64(ram.Span(a, 8));

    [Theory, MemberData(nameof(Tiers))]
    public void A_pending_interrupt_waits_while_IF_is_clear(int tier)
    {
        var (ram, cpu) = Machine(tier, a =>
        {
            var loop = a.CreateLabel();
            a.cli(); a.mov(ecx, 1000);
            a.Label(ref loop); a.dec(ecx); a.jnz(loop);
            a.hlt();
        });
        using var _r = ram; using var _c = cpu;
        cpu.InterruptController = new OneShotController(IntVector);
        cpu.State->InterruptRequest = 1;
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        Assert.Equal(0UL, Q(ram, Data));
    }

    [Theory, MemberData(nameof(Tiers))]
    public void STI_lets_exactly_one_instruction_run_before_the_interrupt(int tier)
    {
        var (ram, cpu) = Machine(tier, a =>
        {
            a.cli();
            a.mov(__qword_ptr[Data + 0x10], 0);
            a.sti();
            a.mov(__qword_ptr[Data + 0x10], 1); // in the STI shadow: runs before the interrupt is taken
            a.mov(rax, __qword_ptr[Data]);     // the handler has run by now
            a.hlt();
        });
        using var _r = ram; using var _c = cpu;
        cpu.InterruptController = new OneShotController(IntVector);
        cpu.State->InterruptRequest = 1;
        var exit = cpu.Run();
        Assert.True(exit == ExitReason.Hlt, $"{exit}: {cpu.ExitMessage}");
        Assert.Equal(1UL, Q(ram, Data));         // delivered once
        Assert.Equal(1UL, Q(ram, Data + 0x18));  // after the shadowed instruction
        Assert.Equal(1UL, cpu.Gpr(0));           // before the next one
        Assert.NotEqual(0UL, cpu.State->Rflags & RFlags.IF); // IRETQ restored IF
    }

    [Theory, MemberData(nameof(Tiers))]
    public void A_second_NMI_waits_for_the_IRET_of_the_first(int tier)
    {
        var ram = new GuestRam(1 << 20);
        var bus = new NmiBus(ram);
        var (_, cpu) = Machine(tier, a =>
        {
            var loop = a.CreateLabel();
            a.cli(); // NMIs ignore IF
            a.mov(ecx, 100);
            a.Label(ref loop); a.dec(ecx); a.jnz(loop);
            a.hlt();
        }, bus, ram);
        using var _r = ram; using var _c = cpu;
        bus.Cpu = cpu;
        cpu.State->NmiPending = 1;
        var exit = cpu.Run();
        Assert.True(exit == ExitReason.Hlt, $"{exit}: {cpu.ExitMessage}");
        Assert.Equal(2UL, Q(ram, Data + 8));
        // The second handler entry saw the first one's increment: it was held until IRETQ.
        Assert.Equal([0UL, 1UL], bus.CountsSeen);
        Assert.Equal(0, cpu.State->NmiBlocked);
    }
}
