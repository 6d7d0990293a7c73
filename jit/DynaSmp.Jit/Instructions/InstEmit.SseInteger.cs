using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of the SSE2/SSSE3 packed integer instructions (arithmetic, compares, shuffles, unpacks, packs,
/// shifts, PSHUFB and the other SSSE3 forms): the source operand is read inline, then one call to
/// <see cref="SseIntegerFast.Packed"/> runs tier 0's own core on the XMM state. Integer SIMD raises nothing past the
/// CR0/CR4 guard and the m128 alignment check, so the call never declines. A Debian kernel's boot made 2.4 million tier-0
/// calls of these (ChaCha20 and RAID6 self-tests, PADDD/PSHUFD/PUNPCK/PSHUFB), each a register write-back and a
/// reload.
/// </summary>
static partial class InstEmit
{
    static void AddSseInteger(Lowering[] t)
    {
        foreach (Mnemonic m in Enum.GetValues<Mnemonic>())
        {
            if (!Interp.IsPackedIntegerOp(m)) continue;
            t[(int)m] = new(SseIntegerCall, CanLowerPackedInteger, false, Xmm: true);
        }
    }

    /// <summary>Only the legacy XMM forms: the MMX forms are #UD (no MMX in our CPUID) and LOCK is #UD, both from tier 0.</summary>
    static bool CanLowerPackedInteger(in Instruction i, int stackWidth) =>
        !i.HasLockPrefix && i.Op0Kind == OpKind.Register && i.Op0Register.IsXMM()
        && (i.OpCount < 2 || i.Op1Kind != OpKind.Register || i.Op1Register.IsXMM());

    static readonly System.Reflection.MethodInfo PackedHelper = typeof(SseIntegerFast).GetMethod(nameof(SseIntegerFast.Packed))!;

    static void SseIntegerCall(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var slow = BeginSse(e, out var cont);
        // PSLLD xmm, imm8 and the byte shifts have no source operand: the count goes where a source's low qword would.
        if (i.OpCount >= 2 && i.Op1Kind == OpKind.Immediate8) { il.Const(i.Immediate8); il.Store(e.T1); il.Const(0); il.Store(e.T2); }
        else LoadSseSource(e, i, 1, slow);
        int imm = i.GetOpKind(i.OpCount - 1) == OpKind.Immediate8 ? i.Immediate8 : 0;
        CallXmmHelper(e, i, PackedHelper, (int)i.Mnemonic | imm << 16);
        il.Mark(cont);
    }
}

/// <summary>Tier 1's entry point for the packed integer instructions (<see cref="InstEmit"/>'s SSE integer lowering).</summary>
public static unsafe class SseIntegerFast
{
    /// <summary>XMM slot <paramref name="d"/> (2n) = its value OP (lo, hi); <paramref name="op"/> is the mnemonic in the low
    /// 16 bits and imm8 above.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Packed(CpuState* s, int d, ulong lo, ulong hi, int op)
    {
        var r = Interp.PackedIntegerOp((Mnemonic)(op & 0xFFFF), Vector128.Create(s->Xmm[d], s->Xmm[d + 1]), Vector128.Create(lo, hi), op >> 16);
        s->Xmm[d] = r.GetElement(0);
        s->Xmm[d + 1] = r.GetElement(1);
    }
}
