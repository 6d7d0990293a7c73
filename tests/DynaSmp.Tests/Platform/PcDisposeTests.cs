using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Platform;

/// <summary>Tearing a PC down while its device-timer thread is kicking vCPUs. A 100,000-seed fuzz run crashed the
/// host after 60,000 seeds: Pc.Dispose freed the vCPUs' state before stopping that thread, whose next LAPIC-timer
/// kick then wrote through a freed pointer (NullReferenceException on a background thread: the process died).</summary>
public class PcDisposeTests
{
    const ulong Code = 0x10_0000;

    /// <summary>Every vCPU arms a fast periodic LAPIC timer with IF=0 and spins: the timer thread kicks it at every
    /// period (the IRR bit stays pending, so the kicks never stop) until the PC is disposed.</summary>
    static byte[] SpinWithPeriodicTimer()
    {
        var a = new Assembler(32);
        Label spin = a.CreateLabel();
        a.cli();
        a.mov(__dword_ptr[0xFEE0_00F0], 0x1FF);           // software-enable
        a.mov(__dword_ptr[0xFEE0_03E0], 0xB);             // divide by 1
        a.mov(__dword_ptr[0xFEE0_0320], 0x2_0030);        // periodic, vector 0x30
        a.mov(__dword_ptr[0xFEE0_0380], 2000);            // initial count: a period of microseconds
        a.Label(ref spin);
        a.pause();
        a.jmp(spin);
        return DynaSmp.Jit.CodeBytes.Assemble(a, Code);
    }

    [Fact]
    public void Disposing_while_the_timer_thread_kicks_never_touches_freed_vcpu_state()
    {
        var code = SpinWithPeriodicTimer();
        for (int round = 0; round < 40; round++)
        {
            var pc = new Pc(new VmConfig { Vcpus = 2, MemoryBytes = 4UL << 20, Trace = false });
            pc.Vm.Ram.Write(Code, code);
            var bsp = pc.Vm.Vcpus[0].Core;
            bsp.SetFlat32((uint)Code, 0x8_0000);
            bsp.ExceptionIntercept = 0;
            pc.Vm.Start();
            // Let the timer thread start and kick (a few rounds dispose sooner, to vary where it is when we stop).
            var until = DateTime.UtcNow.AddMilliseconds(round % 4 == 0 ? 1 : 15);
            while (DateTime.UtcNow < until && pc.Vm.Vcpus[0].Apic.TimerDeadline == long.MaxValue) Thread.SpinWait(100);
            Thread.Sleep(round % 3);
            Assert.False(pc.Vm.StopRequested, $"round {round}: {pc.Vm.ExitKind} {pc.Vm.ExitMessage}");
            pc.Dispose();
            Assert.Equal(VmExitKind.Stopped, pc.Vm.ExitKind);
        }
    }
}
