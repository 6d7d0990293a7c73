using System.Diagnostics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

/// <summary>
/// Tier 0: executes one decoded instruction directly on CpuState. It is the reference semantics of the
/// core: translated code lowers the common instructions itself and calls here for everything else.
/// </summary>
/// <remarks>Contract: the caller has set RIP to the next instruction; control transfers overwrite it.
/// An instruction either completes or throws <see cref="CpuFault"/> having changed nothing.</remarks>
public static unsafe partial class Interp
{
    /// <summary>PLE window: host time a run of PAUSEs may spin before the vCPU yields (KVM's ple_window, 4,096 cycles, is
    /// 1-2 us on current hosts).</summary>
    public static readonly long PleWindowTicks = Math.Max(1, Stopwatch.Frequency * 2 / 1_000_000);
    /// <summary>PLE gap: PAUSEs further apart than this start a new run (KVM's ple_gap, scaled to emulated loop bodies).</summary>
    public static readonly long PleGapTicks = Math.Max(1, Stopwatch.Frequency * 20 / 1_000_000);

    /// <summary>PAUSE-loop exiting, as KVM's PLE + kvm_vcpu_on_spin: a guest spinning on a lock or a flag for longer than
    /// the PLE window gives its host CPU away, so the vCPU it waits for (maybe woken onto this CPU) can run. Both tiers
    /// call it.</summary>
    /// <remarks>By time, as KVM's window is, not by count: a yield every 64th PAUSE let a BSP waiting for an AP's check-in
    /// spin 20 us and more between yields (each turn of its loop makes an RDTSC tier-0 call), and an AP of another VM woken
    /// onto that host CPU waited as long.</remarks>
    public static void Pause(CpuCore c)
    {
        c.PauseCount++;
        long now = Stopwatch.GetTimestamp();
        if (now - c.LastPauseAt > PleGapTicks) c.SpinStartedAt = now;
        c.LastPauseAt = now;
        if (now - c.SpinStartedAt < PleWindowTicks) return;
        c.PleYields++;
        Thread.Yield();
        c.SpinStartedAt = Stopwatch.GetTimestamp();
    }

    public static void Execute(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Mnemonic)
        {
            case Mnemonic.Pause: Pause(c); return;
            // MFENCE orders this vCPU's earlier stores before its later loads, which the host's store buffer would not
            // without a fence; SERIALIZE (CPUID.7.EDX[14]) also ends its block, as CPUID does, so code another vCPU
            // patched is decoded again. LFENCE and SFENCE order nothing a TSO host reorders.
            case Mnemonic.Mfence: case Mnemonic.Serialize: Interlocked.MemoryBarrier(); return;
            case Mnemonic.Nop: case Mnemonic.Lfence: case Mnemonic.Sfence:
            case Mnemonic.Prefetchnta: case Mnemonic.Prefetcht0: case Mnemonic.Prefetcht1:
            case Mnemonic.Prefetcht2: case Mnemonic.Prefetchw: case Mnemonic.Endbr64: case Mnemonic.Endbr32:
                return;
            case Mnemonic.Mov: Mov(c, i); return;
            case Mnemonic.Movzx:
            {
                int ss = OpSize(i, 1);
                WriteReg(s, i.Op0Register, ReadOp(c, i, 1, ss));
                return;
            }
            case Mnemonic.Movsx: case Mnemonic.Movsxd:
            {
                int ss = OpSize(i, 1);
                WriteReg(s, i.Op0Register, SignExtend(ReadOp(c, i, 1, ss), ss));
                return;
            }
            case Mnemonic.Lea: WriteReg(s, i.Op0Register, EffectiveOffset(s, i)); return;
            case Mnemonic.Xchg: Xchg(c, i); return;
            case Mnemonic.Add: case Mnemonic.Or: case Mnemonic.Adc: case Mnemonic.Sbb: case Mnemonic.And:
            case Mnemonic.Sub: case Mnemonic.Xor: case Mnemonic.Cmp: case Mnemonic.Test:
                Alu(c, i); return;
            case Mnemonic.Inc: case Mnemonic.Dec: case Mnemonic.Neg: case Mnemonic.Not:
                Unary(c, i); return;
            case Mnemonic.Push: PushOp(c, i); return;
            case Mnemonic.Pop: PopOp(c, i); return;
            case Mnemonic.Call: Call(c, i); return;
            case Mnemonic.Ret: Ret(c, i); return;
            case Mnemonic.Jmp: Jmp(c, i); return;
            case Mnemonic.Jo: case Mnemonic.Jno: case Mnemonic.Jb: case Mnemonic.Jae: case Mnemonic.Je:
            case Mnemonic.Jne: case Mnemonic.Jbe: case Mnemonic.Ja: case Mnemonic.Js: case Mnemonic.Jns:
            case Mnemonic.Jp: case Mnemonic.Jnp: case Mnemonic.Jl: case Mnemonic.Jge: case Mnemonic.Jle: case Mnemonic.Jg:
                if (Flags.Condition(s, (int)i.ConditionCode - 1)) s->Rip = NearBranch(s, i, i.NearBranchTarget);
                return;
            case Mnemonic.Loop: case Mnemonic.Loope: case Mnemonic.Loopne: Loop(c, i); return;
            case Mnemonic.Jcxz: case Mnemonic.Jecxz: case Mnemonic.Jrcxz:
            {
                ulong cx = i.Mnemonic == Mnemonic.Jcxz ? (ushort)s->Gpr[1] : i.Mnemonic == Mnemonic.Jecxz ? (uint)s->Gpr[1] : s->Gpr[1];
                if (cx == 0) s->Rip = NearBranch(s, i, i.NearBranchTarget);
                return;
            }
            case Mnemonic.Seto: case Mnemonic.Setno: case Mnemonic.Setb: case Mnemonic.Setae: case Mnemonic.Sete:
            case Mnemonic.Setne: case Mnemonic.Setbe: case Mnemonic.Seta: case Mnemonic.Sets: case Mnemonic.Setns:
            case Mnemonic.Setp: case Mnemonic.Setnp: case Mnemonic.Setl: case Mnemonic.Setge: case Mnemonic.Setle: case Mnemonic.Setg:
                WriteOp(c, i, 0, 1, Flags.Condition(s, (int)i.ConditionCode - 1) ? 1UL : 0UL);
                return;
            case Mnemonic.Cmovo: case Mnemonic.Cmovno: case Mnemonic.Cmovb: case Mnemonic.Cmovae: case Mnemonic.Cmove:
            case Mnemonic.Cmovne: case Mnemonic.Cmovbe: case Mnemonic.Cmova: case Mnemonic.Cmovs: case Mnemonic.Cmovns:
            case Mnemonic.Cmovp: case Mnemonic.Cmovnp: case Mnemonic.Cmovl: case Mnemonic.Cmovge: case Mnemonic.Cmovle: case Mnemonic.Cmovg:
            {
                int size = OpSize(i, 0);
                ulong v = ReadOp(c, i, 1, size); // the source is read (and may fault) whatever the condition
                if (Flags.Condition(s, (int)i.ConditionCode - 1)) WriteReg(s, i.Op0Register, v);
                else if (size == 4) WriteReg(s, i.Op0Register, ReadReg(s, i.Op0Register)); // 32-bit CMOV always zero-extends
                return;
            }
            case Mnemonic.Clc: Flags.SetStatus(s, RFlags.CF, 0); return;
            case Mnemonic.Stc: Flags.SetStatus(s, RFlags.CF, RFlags.CF); return;
            case Mnemonic.Cmc: Flags.SetStatus(s, RFlags.CF, ~Flags.Get(s)); return;
            case Mnemonic.Cld: s->Rflags &= ~RFlags.DF; return;
            case Mnemonic.Std: s->Rflags |= RFlags.DF; return;
            case Mnemonic.Cli:
                CheckIopl(s);
                s->Rflags &= ~RFlags.IF;
                return;
            case Mnemonic.Sti:
                CheckIopl(s);
                if ((s->Rflags & RFlags.IF) == 0) s->InterruptShadow = 1; // the next instruction runs first (SDM STI)
                s->Rflags |= RFlags.IF;
                return;
            case Mnemonic.Cbw: WriteReg(s, Register.AX, SignExtend(s->Gpr[0], 1)); return;
            case Mnemonic.Cwde: WriteReg(s, Register.EAX, SignExtend(s->Gpr[0], 2)); return;
            case Mnemonic.Cdqe: s->Gpr[0] = SignExtend(s->Gpr[0], 4); return;
            case Mnemonic.Cwd: WriteReg(s, Register.DX, (short)s->Gpr[0] < 0 ? 0xFFFFUL : 0); return;
            case Mnemonic.Cdq: WriteReg(s, Register.EDX, (int)s->Gpr[0] < 0 ? 0xFFFF_FFFFUL : 0); return;
            case Mnemonic.Cqo: s->Gpr[2] = (long)s->Gpr[0] < 0 ? ulong.MaxValue : 0; return;
            case Mnemonic.Lahf: WriteReg(s, Register.AH, (Flags.Get(s) & (RFlags.Status & ~RFlags.OF)) | RFlags.Reserved1); return;
            case Mnemonic.Sahf: Flags.SetStatus(s, RFlags.Status & ~RFlags.OF, ReadReg(s, Register.AH)); return;
            case Mnemonic.Pushf: case Mnemonic.Pushfd: case Mnemonic.Pushfq:
            {
                int size = -i.StackPointerIncrement;
                Push(c, size, Flags.Get(s) & ~(RFlags.VM | RFlags.RF));
                return;
            }
            case Mnemonic.Popf: case Mnemonic.Popfd: case Mnemonic.Popfq: Popf(c, i); return;
            case Mnemonic.Leave: Leave(c, i); return;
            case Mnemonic.Ud0: case Mnemonic.Ud1: case Mnemonic.Ud2: throw CpuFault.UD();
            case Mnemonic.Int3: c.DeliverSoftwareInterruptOrExit(Vector.BP, EventKind.Software); return;
            case Mnemonic.Int: c.DeliverSoftwareInterruptOrExit(i.Immediate8, EventKind.Software); return;
            case Mnemonic.Int1: c.DeliverSoftwareInterruptOrExit(Vector.DB, EventKind.PrivilegedSoftware); return;
            case Mnemonic.Into:
                if ((s->Mode & ExecMode.SizeMask) == ExecMode.Code64) throw CpuFault.UD();
                if ((Flags.Get(s) & RFlags.OF) != 0) c.DeliverSoftwareInterruptOrExit(Vector.OF, EventKind.Software);
                return;
            case Mnemonic.Hlt:
                if (s->Cpl != 0) throw CpuFault.GP();
                s->HaltRequested = 1;
                return;
            case Mnemonic.Cpuid: c.Cpuid.Execute(s); return;
            // A KVM guest's hypercall traps to the hypervisor at any CPL and in any mode; the hypervisor answers in RAX.
            case Mnemonic.Vmcall: case Mnemonic.Vmmcall:
                if (c.HypercallHook is not { } hypercall) throw CpuFault.UD();
                s->Gpr[0] = hypercall();
                return;
            case Mnemonic.Rdtsc:
            {
                CheckTsd(s);
                ulong t = c.ReadTsc();
                s->Gpr[0] = (uint)t; s->Gpr[2] = t >> 32;
                return;
            }
            case Mnemonic.Rdtscp:
            {
                CheckTsd(s);
                ulong t = c.ReadTsc();
                s->Gpr[0] = (uint)t; s->Gpr[2] = t >> 32; s->Gpr[1] = (uint)s->TscAux;
                return;
            }
            case Mnemonic.In: case Mnemonic.Out: PortIo(c, i); return;
            default:
                if (TryExecuteGroup(c, i)) return;
                throw CpuFault.UD();
        }
    }

    /// <summary>CLI/STI in protected mode need CPL &lt;= IOPL (VME/PVI are not offered in CPUID).</summary>
    static void CheckIopl(CpuState* s)
    {
        if ((s->Cr0 & Cr0.PE) != 0 && s->Cpl > (int)((s->Rflags >> 12) & 3)) throw CpuFault.GP();
    }

    static void Mov(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            ulong sel = ReadOp(c, i, 1, 2);
            if (i.Op0Register == Register.CS) throw CpuFault.UD();
            LoadSegment(c, SegOf(i.Op0Register), (ushort)sel);
            if (i.Op0Register == Register.SS) s->InterruptShadow = 1; // MOV SS: so SS:SP can be set as a pair
            return;
        }
        if (i.Op1Kind == OpKind.Register && i.Op1Register.IsSegmentRegister())
        {
            ushort sel = s->Seg(SegOf(i.Op1Register)).Selector;
            // MOV r32/r64, Sreg zero-extends; MOV m16, Sreg stores 16 bits.
            if (i.Op0Kind == OpKind.Register) WriteReg(s, i.Op0Register.GetSize() == 2 ? i.Op0Register : i.Op0Register.GetFullRegister32(), sel);
            else WriteOp(c, i, 0, 2, sel);
            return;
        }
        if ((i.Op0Kind == OpKind.Register && (i.Op0Register.IsCR() || i.Op0Register.IsDR()))
            || (i.Op1Kind == OpKind.Register && (i.Op1Register.IsCR() || i.Op1Register.IsDR())))
        {
            if (!TryExecuteGroup(c, i)) throw new UnsupportedGuestFeatureException("MOV to/from control or debug registers");
            return;
        }
        int size = OpSize(i, 0);
        WriteOp(c, i, 0, size, ReadOp(c, i, 1, size));
    }

    static void Xchg(CpuCore c, in Instruction i)
    {
        int size = OpSize(i, 0);
        if (i.Op0Kind == OpKind.Memory || i.Op1Kind == OpKind.Memory)
        {
            // XCHG with memory is locked whether or not it has a LOCK prefix.
            int memOp = i.Op0Kind == OpKind.Memory ? 0 : 1;
            Register reg = i.GetOpRegister(1 - memOp);
            ulong lin = MemAddress(c.State, i, size, write: true);
            ulong v = ReadReg(c.State, reg);
            byte* p = Mem.HostPointer(c, lin, size, MemAccess.Write);
            ulong old;
            if (p != null) old = Atomics.Exchange(p, size, v);
            else { old = Mem.Read(c, lin, size); Mem.Write(c, lin, size, v); }
            WriteReg(c.State, reg, old);
            return;
        }
        ulong a = ReadReg(c.State, i.Op0Register), b = ReadReg(c.State, i.Op1Register);
        WriteReg(c.State, i.Op0Register, b);
        WriteReg(c.State, i.Op1Register, a);
    }

    /// <summary>Result and lazy-flag operation of a two-operand ALU instruction.</summary>
    public static ulong AluCompute(Mnemonic m, ulong a, ulong b, ulong cin, out FlagOp op)
    {
        switch (m)
        {
            case Mnemonic.Add: op = FlagOp.Add; return a + b;
            case Mnemonic.Adc: op = cin != 0 ? FlagOp.Adc1 : FlagOp.Add; return a + b + cin;
            case Mnemonic.Sub: case Mnemonic.Cmp: op = FlagOp.Sub; return a - b;
            case Mnemonic.Sbb: op = cin != 0 ? FlagOp.Sbb1 : FlagOp.Sub; return a - b - cin;
            case Mnemonic.And: case Mnemonic.Test: op = FlagOp.Logic; return a & b;
            case Mnemonic.Or: op = FlagOp.Logic; return a | b;
            default: op = FlagOp.Logic; return a ^ b;
        }
    }

    static void Alu(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong mask = Flags.SizeMask(size);
        ulong b = ReadOp(c, i, 1, size);
        ulong cin = i.Mnemonic is Mnemonic.Adc or Mnemonic.Sbb ? Flags.Get(s) & RFlags.CF : 0;
        bool writes = i.Mnemonic is not (Mnemonic.Cmp or Mnemonic.Test);
        ulong a, res;
        FlagOp op;
        if (writes && i.Op0Kind == OpKind.Memory && i.HasLockPrefix)
        {
            ulong lin = MemAddress(s, i, size, write: true);
            byte* p = Mem.HostPointer(c, lin, size, MemAccess.Write);
            if (p != null)
            {
                do
                {
                    a = Atomics.Load(p, size);
                    res = AluCompute(i.Mnemonic, a, b, cin, out op) & mask;
                } while (Atomics.CompareExchange(p, size, res, a) != a);
                Flags.SetLazy(s, op, size, res, a, b);
                return;
            }
        }
        else if (i.HasLockPrefix) throw CpuFault.UD(); // LOCK needs a memory destination
        a = ReadOp(c, i, 0, size);
        res = AluCompute(i.Mnemonic, a, b, cin, out op) & mask;
        if (writes) WriteOp(c, i, 0, size, res);
        Flags.SetLazy(s, op, size, res, a, b);
    }

    static ulong UnaryCompute(Mnemonic m, ulong a) => m switch
    {
        Mnemonic.Inc => a + 1, Mnemonic.Dec => a - 1, Mnemonic.Neg => 0 - a, _ => ~a,
    };

    static void Unary(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = OpSize(i, 0);
        ulong mask = Flags.SizeMask(size);
        ulong a, res;
        byte* p = null;
        if (i.HasLockPrefix)
        {
            if (i.Op0Kind != OpKind.Memory) throw CpuFault.UD();
            p = Mem.HostPointer(c, MemAddress(s, i, size, write: true), size, MemAccess.Write);
        }
        if (p != null)
        {
            do
            {
                a = Atomics.Load(p, size);
                res = UnaryCompute(i.Mnemonic, a) & mask;
            } while (Atomics.CompareExchange(p, size, res, a) != a);
        }
        else
        {
            a = ReadOp(c, i, 0, size);
            res = UnaryCompute(i.Mnemonic, a) & mask;
            WriteOp(c, i, 0, size, res);
        }
        switch (i.Mnemonic)
        {
            case Mnemonic.Inc: Flags.SetLazyIncDec(s, FlagOp.Inc, size, res, a); break;
            case Mnemonic.Dec: Flags.SetLazyIncDec(s, FlagOp.Dec, size, res, a); break;
            case Mnemonic.Neg: Flags.SetLazy(s, FlagOp.Sub, size, res, 0, a); break;
        }
    }

    static void PushOp(CpuCore c, in Instruction i)
    {
        int size = -i.StackPointerIncrement;
        ulong v = i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister()
            ? c.State->Seg(SegOf(i.Op0Register)).Selector
            : ReadOp(c, i, 0, size);
        Push(c, size, v);
    }

    static void PopOp(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = i.StackPointerIncrement;
        ulong oldRsp = s->Gpr[4];
        ulong v = Pop(c, size);
        try
        {
            if (i.Op0Kind == OpKind.Register && i.Op0Register.IsSegmentRegister())
            {
                if (i.Op0Register == Register.CS) throw CpuFault.UD();
                LoadSegment(c, SegOf(i.Op0Register), (ushort)v);
                if (i.Op0Register == Register.SS) s->InterruptShadow = 1;
            }
            else WriteOp(c, i, 0, size, v); // a [rsp]-based destination uses the incremented RSP (SDM POP)
        }
        catch
        {
            s->Gpr[4] = oldRsp;
            throw;
        }
    }

    static void Call(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        if (IsFarBranch(i)) { FarJmpOrCall(c, i, call: true); return; }
        int size = -i.StackPointerIncrement;
        ulong target = i.Op0Kind switch
        {
            OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64 => i.NearBranchTarget,
            _ => ReadOp(c, i, 0, size),
        };
        ulong rip = NearBranch(s, i, target); // checked before the push: a faulting CALL changes nothing
        Push(c, size, s->Rip);
        s->Rip = rip;
    }

    static void Ret(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = i.Code switch
        {
            Code.Retnw or Code.Retnw_imm16 => 2,
            Code.Retnd or Code.Retnd_imm16 => 4,
            _ => 8,
        };
        ulong oldRsp = s->Gpr[4];
        ulong target = Pop(c, size);
        target = size == 2 ? target & 0xFFFF : size == 4 ? target & 0xFFFF_FFFF : target;
        if (SegmentChecks(s) && target > s->Cs.Limit)
        {
            s->Gpr[4] = oldRsp; // the return address is outside CS: #GP(0) with nothing popped
            throw CpuFault.GP();
        }
        if (i.Op0Kind == OpKind.Immediate16)
        {
            int sa = StackAddrSize(s);
            SetStackPointer(s, sa, s->Gpr[4] + i.Immediate16);
        }
        s->Rip = target;
    }

    static void Jmp(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        switch (i.Op0Kind)
        {
            case OpKind.NearBranch16: case OpKind.NearBranch32: case OpKind.NearBranch64:
                s->Rip = NearBranch(s, i, i.NearBranchTarget);
                return;
            case OpKind.Register: case OpKind.Memory:
                if (i.Op0Kind == OpKind.Memory && MnemonicClass.IsFarPointer(i.MemorySize)) break;
                s->Rip = NearBranch(s, i, ReadOp(c, i, 0, OpSize(i, 0)));
                return;
        }
        if (!TryExecuteGroup(c, i)) throw new UnsupportedGuestFeatureException("far JMP");
    }

    static void Loop(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int counterSize = LoopCounterSize(i.Code);
        ulong cx = (counterSize == 2 ? (ushort)s->Gpr[1] : counterSize == 4 ? (uint)s->Gpr[1] : s->Gpr[1]) - 1;
        bool take = (cx & Flags.SizeMask(counterSize)) != 0 && i.Mnemonic switch
        {
            Mnemonic.Loope => Flags.Condition(s, 4),
            Mnemonic.Loopne => Flags.Condition(s, 5),
            _ => true,
        };
        ulong rip = take ? NearBranch(s, i, i.NearBranchTarget) : s->Rip; // a faulting LOOP leaves the counter alone
        WriteReg(s, counterSize == 2 ? Register.CX : counterSize == 4 ? Register.ECX : Register.RCX, cx);
        s->Rip = rip;
    }

    internal static int LoopCounterSize(Code code) => LoopCounter[(int)code];

    // The counter register of LOOPcc follows the address size, which Iced names in the Code suffix.
    static readonly byte[] LoopCounter = BuildLoopCounterTable();

    static byte[] BuildLoopCounterTable()
    {
        var t = new byte[Enum.GetValues<Code>().Length];
        foreach (Code code in Enum.GetValues<Code>())
        {
            string n = code.ToString();
            if (!n.StartsWith("Loop", StringComparison.Ordinal)) continue;
            t[(int)code] = n.EndsWith("_RCX", StringComparison.Ordinal) ? (byte)8 : n.EndsWith("_ECX", StringComparison.Ordinal) ? (byte)4 : (byte)2;
        }
        return t;
    }

    static void Popf(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int size = i.StackPointerIncrement;
        ulong v = Pop(c, size);
        ulong old = Flags.Get(s);
        ulong writable = RFlags.Status | RFlags.TF | RFlags.DF | RFlags.NT | RFlags.AC | RFlags.ID;
        int iopl = (int)((old >> 12) & 3);
        if (s->Cpl == 0) writable |= RFlags.IOPL;
        if (s->Cpl <= iopl) writable |= RFlags.IF;
        if (size == 2) writable &= 0xFFFF;
        Flags.Set(s, (old & ~writable) | (v & writable));
    }

    static void Leave(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        int sa = StackAddrSize(s);
        ulong oldRsp = s->Gpr[4];
        SetStackPointer(s, sa, s->Gpr[5]);
        int size = i.Code switch { Code.Leavew => 2, Code.Leaved => 4, _ => 8 };
        try
        {
            ulong bp = Pop(c, size);
            WriteReg(s, size == 2 ? Register.BP : size == 4 ? Register.EBP : Register.RBP, bp);
        }
        catch
        {
            s->Gpr[4] = oldRsp;
            throw;
        }
    }

    static void PortIo(CpuCore c, in Instruction i)
    {
        CpuState* s = c.State;
        bool isIn = i.Mnemonic == Mnemonic.In;
        int portOp = isIn ? 1 : 0, dataOp = isIn ? 0 : 1;
        ushort port = i.GetOpKind(portOp) == OpKind.Register ? (ushort)s->Gpr[2] : (ushort)i.GetImmediate(portOp);
        Register data = i.GetOpRegister(dataOp);
        int size = data.GetSize();
        c.CheckIoPermission(port, size);
        if (isIn) WriteReg(s, data, c.Bus.PortIn(port, size));
        else c.Bus.PortOut(port, size, (uint)ReadReg(s, data));
    }
}
