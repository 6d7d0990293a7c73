using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Fpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of the SSE/SSE2 instructions FP loops run: moves, logicals and MOVMSK inline in IL on the XMM
/// state; arithmetic, MIN/MAX, SQRT, CMPcc, (U)COMIS, shuffles, unpacks and conversions as one call to
/// <see cref="SseFastPath"/> (no register write-back: XMM and MXCSR live in CpuState). Every form first checks
/// CR0.EM/TS and CR4.OSFXSR inline; that check, a misaligned m128, or a case the fast path declines (rounding mode,
/// special operands, flags not yet sticky) goes to an out-of-line tier-0 call of the same instruction, which is the
/// reference semantics (SoftFloat, #XM/#UD/#NM/#GP). Memory operands are read before anything is written.
/// </summary>
static partial class InstEmit
{
    /// <summary>Mnemonics lowered here (XMM register operands are allowed only for these). Read from the table itself:
    /// a flag array filled while the table was built read false when asked before anything else touched the table
    /// (a process's first compile, if it began with an SSE instruction, lowered none of them).</summary>
    internal static bool IsSseLowered(Mnemonic m) => Table[(int)m].Xmm;

    static void AddSse(Lowering[] t)
    {
        void Add(Lower emit, CanLower? can, params Mnemonic[] ms)
        {
            foreach (var m in ms) t[(int)m] = new(emit, can, false, Xmm: true);
        }
        // MOVSD is also the string move: only the SSE2 forms.
        Add(SseMove, (in i, _) => i.Mnemonic != Mnemonic.Movsd || i.Code is Code.Movsd_xmm_xmmm64 or Code.Movsd_xmmm64_xmm,
            Mnemonic.Movaps, Mnemonic.Movapd, Mnemonic.Movups, Mnemonic.Movupd, Mnemonic.Movdqa, Mnemonic.Movdqu,
            Mnemonic.Movss, Mnemonic.Movsd, Mnemonic.Movq, Mnemonic.Movd, Mnemonic.Movlpd, Mnemonic.Movlps,
            Mnemonic.Movhpd, Mnemonic.Movhps, Mnemonic.Movhlps, Mnemonic.Movlhps);
        Add(SseLogic, null,
            Mnemonic.Andps, Mnemonic.Andpd, Mnemonic.Andnps, Mnemonic.Andnpd, Mnemonic.Orps, Mnemonic.Orpd,
            Mnemonic.Xorps, Mnemonic.Xorpd, Mnemonic.Pand, Mnemonic.Pandn, Mnemonic.Por, Mnemonic.Pxor);
        Add(SseMoveMask, null, Mnemonic.Movmskpd, Mnemonic.Movmskps);
        foreach (var (m, _) in SseFastPath.XmmHelpers) Add(SseHelperCall, (in i, _) => SseFastPath.XmmHelper(i) != null, m);
        foreach (var (m, _) in SseFastPath.GprHelpers) Add(SseToGpr, null, m);
    }

    static int XmmState(Register r, int half) => StateOffsets.Xmm + 16 * (r - Register.XMM0) + 8 * half;

    /// <summary>Starts a lowering: the out-of-line tier-0 path (returned; the emitter marks <paramref name="cont"/> at its
    /// end, where that path rejoins) and the CR0/CR4 check that takes it.</summary>
    static Label BeginSse(BlockEmitter e, out Label cont)
    {
        cont = e.Il.Label();
        var slow = e.SlowPath(cont);
        EmitSseGuard(e, slow);
        return slow;
    }

    /// <summary>CR0.EM or CR0.TS set, or CR4.OSFXSR clear: tier 0 raises #UD or #NM.</summary>
    static void EmitSseGuard(BlockEmitter e, Label slow)
    {
        if (e.FpuGuard >= 2) return;
        e.FpuGuard = 2;
        var il = e.Il;
        il.LoadState64(StateOffsets.Cr0); il.Const(Cr0.EM | Cr0.TS); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, slow);
        il.LoadState64(StateOffsets.Cr4); il.Const(Interp.Cr4OsFxsr); il.Emit(OpCodes.And); il.Emit(OpCodes.Brfalse, slow);
    }

    /// <summary>Legacy SSE m128 operands must be 16-byte aligned (#GP(0) from tier 0), except the unaligned moves.</summary>
    static bool NeedsAlignment(in Instruction i) =>
        i.MemorySize.GetSize() == 16 && i.Mnemonic is not (Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqu);

    /// <summary>Operand <paramref name="op"/> into T1 (low qword) and T2 (high qword, 0 for narrower sources): an XMM
    /// register, a GPR (zero-extended) or memory of the operand's size.</summary>
    static void LoadSseSource(BlockEmitter e, in Instruction i, int op, Label slow)
    {
        var il = e.Il;
        if (i.GetOpKind(op) == OpKind.Register)
        {
            var r = i.GetOpRegister(op);
            if (r.IsXMM())
            {
                il.LoadState64(XmmState(r, 0)); il.Store(e.T1);
                il.LoadState64(XmmState(r, 1)); il.Store(e.T2);
                return;
            }
            e.LoadReg(r); il.Store(e.T1);
            il.Const(0); il.Store(e.T2);
            return;
        }
        int size = i.MemorySize.GetSize();
        e.ComputeLinear();
        if (size > 8) e.CheckSegmentLimit(size);
        if (NeedsAlignment(i)) { il.Load(e.Lin); il.Const(15); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, slow); }
        e.EmitRead(Math.Min(size, 8));
        il.Load(e.Val); il.Store(e.T1);
        if (size == 16)
        {
            il.Load(e.Lin); il.Const(8); il.Emit(OpCodes.Add); il.Store(e.Lin);
            e.EmitRead(8);
            il.Load(e.Val); il.Store(e.T2);
        }
        else { il.Const(0); il.Store(e.T2); }
    }

    static void StoreXmm(BlockEmitter e, Register r, int half, Local64 v) => e.Il.StoreState64(XmmState(r, half), v);

    static void StoreXmmConst(BlockEmitter e, Register r, int half, ulong v) => e.Il.StoreState64Const(XmmState(r, half), v);

    static bool IsFullMove(Mnemonic m) =>
        m is Mnemonic.Movaps or Mnemonic.Movapd or Mnemonic.Movups or Mnemonic.Movupd or Mnemonic.Movdqa or Mnemonic.Movdqu;

    static void SseMove(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var m = i.Mnemonic;
        var slow = BeginSse(e, out var cont);
        if (i.Op0Kind == OpKind.Memory)
        {
            var src = i.Op1Register;
            e.ComputeLinear();
            if (IsFullMove(m))
            {
                // Both qwords land in one page (aligned, or checked), so the second store cannot fault after the first.
                e.CheckSegmentLimit(16);
                il.Load(e.Lin);
                if (NeedsAlignment(i)) { il.Const(15); il.Emit(OpCodes.And); il.Emit(OpCodes.Brtrue, slow); }
                else { il.Const(GuestRam.PageMask); il.Emit(OpCodes.And); il.Const(GuestRam.PageSize - 16); il.Emit(OpCodes.Bgt_Un, slow); }
                il.LoadState64(XmmState(src, 0)); il.Store(e.T1);
                e.EmitWrite(8, e.T1);
                il.Load(e.Lin); il.Const(8); il.Emit(OpCodes.Add); il.Store(e.Lin);
                il.LoadState64(XmmState(src, 1)); il.Store(e.T2);
                e.EmitWrite(8, e.T2);
            }
            else
            {
                il.LoadState64(XmmState(src, m is Mnemonic.Movhpd or Mnemonic.Movhps ? 1 : 0)); il.Store(e.T1);
                e.EmitWrite(i.MemorySize.GetSize(), e.T1);
            }
        }
        else if (i.Op0Register.IsGPR())
        {
            il.LoadState64(XmmState(i.Op1Register, 0)); il.Store(e.T1);
            e.StoreReg(i.Op0Register, e.T1);
        }
        else if (i.Op1Kind == OpKind.Register && i.Op1Register.IsXMM())
        {
            Register d = i.Op0Register, s = i.Op1Register;
            switch (m)
            {
                case Mnemonic.Movss:
                    il.LoadState64(XmmState(d, 0)); il.Const(0xFFFF_FFFF_0000_0000); il.Emit(OpCodes.And);
                    il.LoadState64(XmmState(s, 0)); il.Const(0xFFFF_FFFF); il.Emit(OpCodes.And);
                    il.Emit(OpCodes.Or); il.Store(e.T1);
                    StoreXmm(e, d, 0, e.T1);
                    break;
                case Mnemonic.Movsd: case Mnemonic.Movq: case Mnemonic.Movhlps: case Mnemonic.Movlhps:
                    // One qword: source half -> destination half; MOVQ also zeroes the high qword.
                    il.LoadState64(XmmState(s, m == Mnemonic.Movhlps ? 1 : 0)); il.Store(e.T1);
                    StoreXmm(e, d, m == Mnemonic.Movlhps ? 1 : 0, e.T1);
                    if (m == Mnemonic.Movq) StoreXmmConst(e, d, 1, 0);
                    break;
                default:
                    il.LoadState64(XmmState(s, 0)); il.Store(e.T1);
                    il.LoadState64(XmmState(s, 1)); il.Store(e.T2);
                    StoreXmm(e, d, 0, e.T1);
                    StoreXmm(e, d, 1, e.T2);
                    break;
            }
        }
        else
        {
            // A load from memory or a GPR: narrower sources zero the rest of the register, except MOVLPx/MOVHPx.
            var d = i.Op0Register;
            LoadSseSource(e, i, 1, slow);
            switch (m)
            {
                case Mnemonic.Movlpd: case Mnemonic.Movlps: StoreXmm(e, d, 0, e.T1); break;
                case Mnemonic.Movhpd: case Mnemonic.Movhps: StoreXmm(e, d, 1, e.T1); break;
                default: StoreXmm(e, d, 0, e.T1); StoreXmm(e, d, 1, e.T2); break;
            }
        }
        il.Mark(cont);
    }

    static void SseLogic(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginSse(e, out var cont);
        LoadSseSource(e, i, 1, slow);
        var d = i.Op0Register;
        bool andNot = i.Mnemonic is Mnemonic.Andnps or Mnemonic.Andnpd or Mnemonic.Pandn;
        var op = i.Mnemonic switch
        {
            Mnemonic.Andps or Mnemonic.Andpd or Mnemonic.Pand or Mnemonic.Andnps or Mnemonic.Andnpd or Mnemonic.Pandn => OpCodes.And,
            Mnemonic.Orps or Mnemonic.Orpd or Mnemonic.Por => OpCodes.Or,
            _ => OpCodes.Xor,
        };
        for (int half = 0; half < 2; half++)
        {
            var src = half == 0 ? e.T1 : e.T2;
            il.LoadState64(XmmState(d, half));
            if (andNot) il.Emit(OpCodes.Not);
            il.Load(src);
            il.Emit(op);
            il.Store(src);
            StoreXmm(e, d, half, src);
        }
        il.Mark(cont);
    }

    static void SseMoveMask(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginSse(e, out var cont);
        var s = i.Op1Register;
        // Sign bits of the lanes: bit 63 of each qword (PD) or bits 31 and 63 of each (PS).
        int[] bits = i.Mnemonic == Mnemonic.Movmskpd ? [63] : [31, 63];
        il.Const(0);
        int k = 0;
        for (int half = 0; half < 2; half++)
            foreach (int b in bits)
            {
                il.LoadState64(XmmState(s, half)); il.ConstI4(b); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And);
                if (k != 0) { il.ConstI4(k); il.Emit(OpCodes.Shl); }
                il.Emit(OpCodes.Or);
                k++;
            }
        il.Store(e.T1);
        e.StoreReg(i.Op0Register, e.T1);
        il.Mark(cont);
    }

    /// <summary>XMM destination, XMM/memory/GPR source: one <see cref="SseFastPath"/> call, the interpreter if it declines.</summary>
    static void SseHelperCall(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginSse(e, out var cont);
        LoadSseSource(e, i, 1, slow);
        int imm = i.Mnemonic is Mnemonic.Cvtsi2sd or Mnemonic.Cvtsi2ss ? OperandSize(i, 1)
            : i.OpCount > 2 ? i.Immediate8 : 0;
        CallXmmHelper(e, i, SseFastPath.XmmHelper(i)!, imm);
        il.Emit(OpCodes.Brfalse, slow);
        il.Mark(cont);
        if (i.Mnemonic is Mnemonic.Comisd or Mnemonic.Ucomisd or Mnemonic.Comiss or Mnemonic.Ucomiss) e.FlagsWrittenToState();
    }

    /// <summary>helper(CpuState*, destination XMM slot, source low qword in T1, high in T2, <paramref name="arg"/>).</summary>
    static void CallXmmHelper(BlockEmitter e, in Instruction i, MethodInfo helper, int arg)
    {
        var il = e.Il;
        il.Gen.Emit(OpCodes.Ldarg_1);
        il.ConstI4((i.Op0Register - Register.XMM0) * 2);
        il.Load(e.T1); il.Load(e.T2); il.ConstI4(arg);
        il.Call(helper);
    }

    /// <summary>CVT(T)SD2SI / CVT(T)SS2SI: the fast path returns the integer, stored to the GPR here.</summary>
    static void SseToGpr(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginSse(e, out var cont);
        LoadSseSource(e, i, 1, slow);
        il.Gen.Emit(OpCodes.Ldarg_1);
        il.Load(e.T1); il.ConstI4(i.Op0Register.GetSize());
        il.Gen.Emit(OpCodes.Ldloca, e.OutA.Slot);
        il.Call(SseFastPath.GprHelper(i.Mnemonic)!);
        il.Emit(OpCodes.Brfalse, slow);
        e.StoreReg(i.Op0Register, e.OutA);
        il.Mark(cont);
    }
}
