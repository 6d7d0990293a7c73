using DynaSmp.Jit;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Apic;

/// <summary>Helpers for driving real Vm/Vcpu/Lapic objects from the test thread: a VM that is never started
/// (deterministic config, so RunOnce yields instead of sleeping), IPIs sent as a given vCPU, small real-mode
/// guests at fixed addresses.</summary>
static unsafe class ApicKit
{
    /// <summary>Real-mode park code: vector 8 (page 0x8000). Writes 0x55 to [0x9000], cli, hlt; after a wake it
    /// writes 0x66 to [0x9001] and halts again.</summary>
    public const byte ParkVector = 0x08;
    public const ulong Marker = 0x9000;
    /// <summary>IVT handler for NMI (2) and vector 0x40 in real mode: writes 0x77 to [0x9002], cli, hlt.</summary>
    public const ulong Handler = 0x8100;
    public const byte FixedVector = 0x40;

    public static Vm NewVm(int vcpus = 4, bool x2apic = false, int seed = 1, int traceCapacity = 4096, bool kvmParavirt = false, JitOptions? jit = null) =>
        new(new VmConfig
        {
            Vcpus = vcpus, MemoryBytes = 16 << 20, X2Apic = x2apic, DeterministicSeed = seed,
            Jit = jit ?? JitOptions.InterpretOnly, TraceCapacity = traceCapacity, KvmParavirt = kvmParavirt,
        });

    /// <summary>A VM whose RAM holds the park code and the IVT handler.</summary>
    public static Vm NewParkVm(int vcpus = 4, bool kvmParavirt = false, JitOptions? jit = null)
    {
        var vm = NewVm(vcpus, kvmParavirt: kvmParavirt, jit: jit);
        var a = new Assembler(16);
        a.mov(__byte_ptr[(ushort)Marker], 0x55);
        a.cli();
        a.hlt();
        a.mov(__byte_ptr[(ushort)(Marker + 1)], 0x66);
        a.cli();
        var l = a.CreateLabel();
        a.Label(ref l);
        a.hlt();
        a.jmp(l);
        vm.Ram.Write((ulong)ParkVector << 12, Assemble(a, (ulong)ParkVector << 12));
        var h = new Assembler(16);
        h.mov(__byte_ptr[(ushort)(Marker + 2)], 0x77);
        h.cli();
        var l2 = h.CreateLabel();
        h.Label(ref l2);
        h.hlt();
        h.jmp(l2);
        vm.Ram.Write(Handler, Assemble(h, Handler));
        foreach (int v in new[] { 2, FixedVector })
            vm.Ram.Write((ulong)v * 4, [(byte)(Handler & 0xFF), (byte)(Handler >> 8), 0, 0]);
        return vm;
    }

    public static byte Mem8(Vm vm, ulong a) => vm.Ram.Span(a, 1)[0];
    public static uint Mem32(Vm vm, ulong a) => BitConverter.ToUInt32(vm.Ram.Span(a, 4));

    /// <summary>Routes an ICR write as if vCPU <paramref name="src"/> had written it (kvm_apic_send_ipi).</summary>
    public static void Send(Vm vm, int src, uint low, uint dest) => vm.SendIpi(vm.Vcpus[src], new IcrWrite(low, dest));

    public const uint InitAssert = 0xC500, InitDeassert = 0x8500, InitEdge = 0x0500;
    public static uint Sipi(byte v) => 0x600u | v;
    public static uint Fixed(byte v) => v;
    public const uint Nmi = 0x400;
    /// <summary>Delivery mode 011, reserved by the SDM; KVM reuses it as the PV unhalt kick.</summary>
    public const uint RemoteRead = 0x300;

    public static bool IrrBit(Lapic a, int v) => (a.ReadRegister(0x200 + (v >> 5) * 0x10) & (1u << (v & 31))) != 0;
    public static bool IsrBit(Lapic a, int v) => (a.ReadRegister(0x100 + (v >> 5) * 0x10) & (1u << (v & 31))) != 0;
    public static bool TmrBit(Lapic a, int v) => (a.ReadRegister(0x180 + (v >> 5) * 0x10) & (1u << (v & 31))) != 0;
    public static int IrrCount(Lapic a)
    {
        int n = 0;
        for (int w = 0; w < 8; w++) n += System.Numerics.BitOperations.PopCount(a.ReadRegister(0x200 + w * 0x10));
        return n;
    }
    public static void SoftwareEnable(Lapic a, bool on = true) => a.WriteRegister(0xF0, on ? 0x1FFu : 0xFFu);

    /// <summary>INIT + SIPI(ParkVector) accepted: the AP is RUNNABLE at the park code, not yet run.</summary>
    public static void StartAp(Vm vm, int ap, byte vector = ParkVector)
    {
        Send(vm, 0, InitAssert, (uint)ap);
        Send(vm, 0, Sipi(vector), (uint)ap);
        if (vm.Vcpus[ap].GetMpState() != MpState.Runnable) throw new InvalidOperationException("AP did not start");
    }

    /// <summary>What the deterministic scheduler does for one vCPU: turns until it can make no progress (halted,
    /// wait-for-SIPI with nothing pending) or stops. A kick leaves ExitRequest set, so a turn may run nothing.</summary>
    public static VcpuExitReason RunIdle(Vcpu v, int maxTurns = 100)
    {
        var r = VcpuExitReason.None;
        for (int k = 0; k < maxTurns && v.CanProgress && !v.Vm.StopRequested; k++) r = v.RunOnce();
        if (v.Vm.StopRequested) throw new InvalidOperationException($"VM stopped: {v.Vm.ExitMessage}");
        return r;
    }

    public static byte[] Assemble(Assembler a, ulong address)
    {
        return CodeBytes.Assemble(a, address);
    }
}
