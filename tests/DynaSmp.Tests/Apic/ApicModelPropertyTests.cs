using CsCheck;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using static DynaSmp.Tests.Apic.ApicKit;

namespace DynaSmp.Tests.Apic;

/// <summary>The reference model of kvm-semantics.md §8.1 (pending set P, vector slot V, state M per vCPU, plus
/// the APIC software-enable bit, IRR and the NMI queue of §3/§4), and CsCheck properties that feed the same
/// random event sequences to it and to real Vm/Vcpu/Lapic objects (one thread, acceptance driven explicitly).
/// On failure CsCheck reports the seed (replay with CsCheck_Seed=... or the seed argument) and the shrunk sequence.</summary>
public unsafe class ApicModelPropertyTests
{
    const int N = 4;

    public enum Kind { InitAssert, InitEdge, InitDeassert, Sipi, Fixed, Nmi, GetMpState, AcceptEvents, SetMpState, SpivOn, SpivOff, BspFlag, FixedAllExcl, RunUninit }

    public readonly record struct Op(Kind Kind, int Src, int Tgt, byte Arg)
    {
        public override string ToString() => $"{Kind}({Src}->{Tgt},0x{Arg:x2})";
    }

    /// <summary>One vCPU of the model.</summary>
    sealed class M
    {
        public bool PI, PS, Sw, Bsp, Nmi;
        public byte V, StartVector;
        public bool StartedSinceReset;
        public MpState State;
        public readonly bool[] Irr = new bool[256];
        public long Resets, Starts, Agains;

        // §8.1 accept (INIT/SIPI are never blocked here: no SMM, no VMX).
        public void Accept()
        {
            if (PI)
            {
                PI = false;
                Array.Clear(Irr);
                Sw = false; Nmi = false; // kvm_vcpu_reset(init_event): SPIV = 0xFF, IRR cleared, NMI dropped
                Resets++;
                StartedSinceReset = false;
                State = Bsp ? MpState.Runnable : MpState.InitReceived;
            }
            if (PS)
            {
                PS = false;
                if (State == MpState.InitReceived) { State = MpState.Runnable; Starts++; StartVector = V; StartedSinceReset = true; }
            }
        }
    }

    static readonly MpState[] SetStates = [MpState.Runnable, MpState.Uninitialized, MpState.InitReceived, MpState.Halted, MpState.SipiReceived];

    static void Apply(M[] model, Vm vm, Op op)
    {
        var t = model[op.Tgt];
        var v = vm.Vcpus[op.Tgt];
        byte fixedVector = (byte)(16 + op.Arg % 240);
        switch (op.Kind)
        {
            case Kind.InitAssert: Send(vm, op.Src, InitAssert, (uint)op.Tgt); t.PI = true; t.PS = false; break;
            case Kind.InitEdge: Send(vm, op.Src, InitEdge, (uint)op.Tgt); t.PI = true; t.PS = false; break;
            case Kind.InitDeassert: Send(vm, op.Src, InitDeassert, (uint)op.Tgt); break;
            case Kind.Sipi: Send(vm, op.Src, Sipi(op.Arg), (uint)op.Tgt); t.V = op.Arg; t.PS = true; break;
            case Kind.Fixed:
                Send(vm, op.Src, Fixed(fixedVector), (uint)op.Tgt);
                if (t.Sw) t.Irr[fixedVector] = true; // invariant 12: dropped while software-disabled
                break;
            case Kind.FixedAllExcl:
                Send(vm, op.Src, 0xC_0000u | fixedVector, 0);
                for (int k = 0; k < N; k++) if (k != op.Src && model[k].Sw) model[k].Irr[fixedVector] = true;
                break;
            case Kind.Nmi: Send(vm, op.Src, ApicKit.Nmi, (uint)op.Tgt); t.Nmi = true; break;
            case Kind.GetMpState:
                t.Accept();
                var got = v.GetMpState();
                if (got != t.State) throw new Exception($"KVM_GET_MP_STATE of vCPU {op.Tgt} returned {got}, model {t.State}");
                break;
            case Kind.AcceptEvents: t.Accept(); v.AcceptEvents(); break;
            case Kind.SetMpState:
                var s = SetStates[op.Arg % SetStates.Length];
                v.SetMpState(s);
                if (s == MpState.SipiReceived) { t.State = MpState.InitReceived; t.PS = true; }
                else t.State = s;
                break;
            case Kind.SpivOn: SoftwareEnable(v.Apic); t.Sw = true; break;
            case Kind.SpivOff: SoftwareEnable(v.Apic, false); t.Sw = false; break;
            case Kind.BspFlag:
                t.Bsp = (op.Arg & 1) != 0;
                v.Apic.WriteApicBase(0xFEE0_0800UL | (t.Bsp ? 0x100UL : 0));
                break;
            case Kind.RunUninit:
                // KVM_RUN on UNINITIALIZED with a wake event (so it does not sleep): one accept, "again".
                if (t.State == MpState.Uninitialized && (t.PI || t.PS || t.Nmi))
                {
                    t.Accept();
                    t.Agains++;
                    var r = v.RunOnce();
                    if (r != VcpuExitReason.Again) throw new Exception($"KVM_RUN on UNINITIALIZED vCPU {op.Tgt} returned {r}, not again");
                }
                break;
        }
    }

    static void Compare(M[] model, Vm vm, int step, Op op)
    {
        for (int k = 0; k < N; k++)
        {
            var m = model[k];
            var v = vm.Vcpus[k];
            var s = v.Core.State;
            string at = $"after step {step} {op}: vCPU {k}";
            void Eq<T>(T expected, T actual, string what)
            {
                if (!EqualityComparer<T>.Default.Equals(expected, actual)) throw new Exception($"{at}: {what}: model {expected}, machine {actual}");
            }
            Eq(m.State, v.MpState, "mp_state");
            Eq((m.PI ? PendingEvents.Init : 0) | (m.PS ? PendingEvents.Sipi : 0), v.Apic.Pending.Bits, "pending INIT/SIPI");
            Eq(m.V, v.Apic.Pending.StoredVector, "SIPI vector slot");
            Eq(m.Resets, v.InitResets, "INIT resets");
            Eq(m.Starts, v.SipiStarts, "SIPI starts");
            Eq(m.Agains, v.AgainReturns, "again returns");
            Eq(m.Sw, v.Apic.SoftwareEnabled, "SPIV software enable");
            Eq(m.Nmi, s->NmiPending != 0, "NMI pending");
            for (int w = 0; w < 8; w++)
            {
                uint bits = 0;
                for (int b = 0; b < 32; b++) if (m.Irr[w * 32 + b]) bits |= 1u << b;
                Eq(bits, v.Apic.ReadRegister(0x200 + w * 0x10), $"IRR[{w}]");
            }
            if (m.StartedSinceReset)
            {
                Eq((ushort)(m.StartVector << 8), s->Cs.Selector, "CS after SIPI");
                Eq((ulong)m.StartVector << 12, s->Cs.Base, "CS.base after SIPI");
                Eq(0UL, s->Rip, "RIP after SIPI");
            }
            else if (m.Resets > 0)
            {
                Eq((ushort)0xF000, s->Cs.Selector, "CS after INIT");
                Eq(0xFFF0UL, s->Rip, "RIP after INIT");
            }
        }
    }

    static void Run(Op[] ops)
    {
        using var vm = NewVm(N);
        var model = new M[N];
        for (int k = 0; k < N; k++) model[k] = new M { State = k == 0 ? MpState.Runnable : MpState.Uninitialized, Bsp = k == 0 };
        Compare(model, vm, 0, default);
        for (int i = 0; i < ops.Length; i++)
        {
            Apply(model, vm, ops[i]);
            Compare(model, vm, i + 1, ops[i]);
        }
    }

    static readonly Gen<Op> OpGen = Gen.Select(
        Gen.Int[0, (int)Kind.RunUninit], Gen.Int[0, N - 1], Gen.Int[0, N - 1], Gen.Byte,
        (k, s, t, a) => new Op((Kind)k, s, t, a));

    /// <summary>Biased toward the INIT/SIPI/accept interplay: sends and acceptance points dominate.</summary>
    static readonly Gen<Op> StormGen = Gen.Frequency(
        (3, Gen.Select(Gen.Int[0, N - 1], Gen.Int[1, N - 1], Gen.Byte[0, 3], (s, t, a) => new Op(Kind.InitAssert, s, t, a))),
        (4, Gen.Select(Gen.Int[0, N - 1], Gen.Int[1, N - 1], Gen.Byte[0x08, 0x0B], (s, t, a) => new Op(Kind.Sipi, s, t, a))),
        (4, Gen.Select(Gen.Int[1, N - 1], Gen.Int[0, 1], (t, g) => new Op(g == 0 ? Kind.AcceptEvents : Kind.RunUninit, 0, t, 0))),
        (1, OpGen));

    public static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("APIC_MODEL_ITER"), out int n) ? n : 1500;

    [Fact]
    public void Machine_matches_reference_model_on_random_event_sequences() =>
        OpGen.Array[1, 60].Sample(Run, iter: Iterations, threads: 1, print: ops => string.Join(" ", ops));

    [Fact]
    public void Machine_matches_reference_model_on_init_sipi_storms() =>
        StormGen.Array[10, 120].Sample(Run, iter: Iterations, threads: 1, print: ops => string.Join(" ", ops));
}
