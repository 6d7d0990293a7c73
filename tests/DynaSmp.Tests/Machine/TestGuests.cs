using DynaSmp.Jit;
using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Machine;

/// <summary>Small hand-assembled SMP guests for machine tests: the BSP runs flat 64-bit code (paging off,
/// so the LAPIC page is reachable at its physical address) and starts APs with Linux's INIT/INIT/SIPI/SIPI.</summary>
static unsafe class TestGuests
{
    public const ulong BspCode = 0x10_0000, Trampoline = 0x8000, Counter = 0x9000, Apic = 0xFEE0_0000;
    public const byte SipiVector = (byte)(Trampoline >> 12);

    /// <summary>BSP: wake APs 1..n-1, wait for all to check in (bounded), HLT. AP: lock inc [Counter], cli, hlt.</summary>
    public static Vm BringUpVm(int vcpus, JitOptions? jit = null, int? seed = null)
    {
        var vm = new Vm(new VmConfig { Vcpus = vcpus, MemoryBytes = 16 << 20, Jit = jit ?? JitOptions.Default, DeterministicSeed = seed, X2Apic = vcpus > 255 });
        var ap = new Assembler(16);
        ap.@lock.inc(__dword_ptr[(uint)Counter]);
        ap.cli();
        var park = ap.CreateLabel();
        ap.Label(ref park);
        ap.hlt();
        ap.jmp(park);
        vm.Ram.Write(Trampoline, Assemble(ap, Trampoline));

        var a = new Assembler(64);
        Label next = a.CreateLabel(), wait = a.CreateLabel(), done = a.CreateLabel();
        a.mov(rdi, Apic); // above 2 GiB: not reachable as a sign-extended disp32
        a.mov(ebx, 1);
        a.Label(ref next);
        a.cmp(ebx, vcpus);
        a.jae(wait);
        a.mov(eax, ebx); a.shl(eax, 24);
        a.mov(__dword_ptr[rdi + 0x310], eax);      // destination
        a.mov(__dword_ptr[rdi + 0x300], 0xC500);   // INIT, level-triggered, assert
        a.mov(__dword_ptr[rdi + 0x310], eax);
        a.mov(__dword_ptr[rdi + 0x300], 0x8500);   // INIT de-assert
        for (int k = 0; k < 2; k++)
        {
            a.mov(__dword_ptr[rdi + 0x310], eax);
            a.mov(__dword_ptr[rdi + 0x300], 0x600 | SipiVector); // STARTUP
        }
        a.inc(ebx);
        a.jmp(next);
        a.Label(ref wait);
        a.mov(ecx, 200_000_000);
        var spin = a.CreateLabel();
        a.Label(ref spin);
        a.cmp(__dword_ptr[Counter], vcpus - 1);
        a.jae(done);
        a.pause();
        a.dec(ecx);
        a.jnz(spin);
        a.Label(ref done);
        a.mov(eax, __dword_ptr[Counter]);
        a.hlt();
        vm.Ram.Write(BspCode, Assemble(a, BspCode));
        var bsp = vm.Vcpus[0].Core;
        bsp.SetFlat64(BspCode, 0x7000);
        bsp.ExceptionIntercept = uint.MaxValue;
        return vm;
    }

    public static uint ReadCounter(Vm vm) => BitConverter.ToUInt32(vm.Ram.Span(Counter, 4));

    static byte[] Assemble(Assembler a, ulong address)
    {
        return CodeBytes.Assemble(a, address);
    }
}
