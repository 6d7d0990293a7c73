using System.Reflection;
using System.Reflection.Emit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using Label = System.Reflection.Emit.Label;

namespace DynaSmp.Jit.Instructions;

/// <summary>
/// Tier-1 lowering of MOVS/STOS/LODS/CMPS/SCAS, with and without REP (SDM Vol. 2A "MOVS" ..., Vol. 2B "REP"), at the
/// code's own address size (RSI/RDI/RCX in 64-bit mode, ESI/EDI/ECX in flat 32-bit code; other address sizes stay in
/// tier 0). RCX/RSI/RDI live in the block's locals and advance element by element, so a fault in any element leaves
/// them at that element with RIP on the instruction: the SDM's restartable "interrupted REP" state, which is what the
/// block's fault exit writes back. REP MOVS/STOS first try <see cref="RepChunk"/>, which moves up to a page at once when
/// both pages are in the TLB (RAM, and for stores not a page holding translations); everything else - a TLB miss, MMIO,
/// an element crossing a page, a store into translated code (the SMC path), overlap that changes the result - takes the
/// element path. Between chunks and elements the loop polls ExitRequest and, when asked, leaves with the progress made.
/// </summary>
static partial class InstEmit
{
    enum StringKind { Movs, Stos, Lods, Cmps, Scas }

    // In its own class: InstEmit's table is built in a static initializer that may run before this file's fields.
    static class StringTables
    {
        public static readonly (Mnemonic M, StringKind Kind, int Size)[] Forms =
    [
        (Mnemonic.Movsb, StringKind.Movs, 1), (Mnemonic.Movsw, StringKind.Movs, 2), (Mnemonic.Movsd, StringKind.Movs, 4), (Mnemonic.Movsq, StringKind.Movs, 8),
        (Mnemonic.Stosb, StringKind.Stos, 1), (Mnemonic.Stosw, StringKind.Stos, 2), (Mnemonic.Stosd, StringKind.Stos, 4), (Mnemonic.Stosq, StringKind.Stos, 8),
        (Mnemonic.Lodsb, StringKind.Lods, 1), (Mnemonic.Lodsw, StringKind.Lods, 2), (Mnemonic.Lodsd, StringKind.Lods, 4), (Mnemonic.Lodsq, StringKind.Lods, 8),
        (Mnemonic.Cmpsb, StringKind.Cmps, 1), (Mnemonic.Cmpsw, StringKind.Cmps, 2), (Mnemonic.Cmpsd, StringKind.Cmps, 4), (Mnemonic.Cmpsq, StringKind.Cmps, 8),
        (Mnemonic.Scasb, StringKind.Scas, 1), (Mnemonic.Scasw, StringKind.Scas, 2), (Mnemonic.Scasd, StringKind.Scas, 4), (Mnemonic.Scasq, StringKind.Scas, 8),
    ];

        public static readonly MethodInfo RepChunk = typeof(InstEmit).GetMethod(nameof(InstEmit.RepChunk), BindingFlags.Public | BindingFlags.Static)!;
    }

    static (StringKind Kind, int Size) StringForm(Mnemonic m)
    {
        foreach (var f in StringTables.Forms) if (f.M == m) return (f.Kind, f.Size);
        throw new ArgumentException(m.ToString());
    }

    /// <summary>MOVS/STOS/LODS/CMPS/SCAS (not the SSE MOVSD/CMPSD, nor INS/OUTS).</summary>
    internal static bool IsStringOp(in Instruction i)
    {
        if (Interp.StringAddressSize(i) == 0) return false;
        foreach (var f in StringTables.Forms) if (f.M == i.Mnemonic) return true;
        return false;
    }

    static bool StringLowerable(in Instruction i, int stackWidth) =>
        Interp.StringAddressSize(i) == stackWidth && !(stackWidth == 4 && i.MemorySegment == Register.CS);

    // MOVSD and CMPSD share their mnemonics with the SSE2 instructions: one entry dispatches on the form.
    static void AddStrings(Lowering[] t)
    {
        foreach (var f in StringTables.Forms)
        {
            var other = t[(int)f.M];
            if (other.Emit == null) { t[(int)f.M] = new(StringOp, StringLowerable, false); continue; }
            t[(int)f.M] = new(
                (e, in i) => { if (IsStringOp(i)) StringOp(e, i); else other.Emit(e, i); },
                (in i, w) => IsStringOp(i) ? StringLowerable(i, w) : other.Can == null || other.Can(i, w),
                false, Xmm: other.Xmm, X87: other.X87);
        }
    }

    static void StringOp(BlockEmitter e, in Instruction i)
    {
        var il = e.Il;
        var (kind, size) = StringForm(i.Mnemonic);
        int aw = e.StackWidth;
        Register rsi = aw == 8 ? Register.RSI : Register.ESI, rdi = aw == 8 ? Register.RDI : Register.EDI, rcx = aw == 8 ? Register.RCX : Register.ECX;
        Register acc = CaseRegister(0, size);
        var src = i.MemorySegment; // DS unless overridden; STOS/SCAS have only ES:RDI
        // step = DF ? -size : size (DF lives in CpuState.Rflags, never lazy)
        var step = il.NewLocal();
        il.Const((ulong)size);
        il.LoadState64(StateOffsets.Rflags); il.ConstI4(10); il.Emit(OpCodes.Shr_Un); il.Const(1); il.Emit(OpCodes.And);
        il.Const((ulong)(2 * size)); il.Emit(OpCodes.Mul); il.Emit(OpCodes.Sub); il.Store(step);
        var value = il.NewLocal(); // STOS/SCAS: the accumulator, read once
        if (kind == StringKind.Stos || kind == StringKind.Scas) { e.LoadReg(acc); il.Store(value); }
        bool rep = i.HasRepPrefix || i.HasRepnePrefix;
        if (!rep)
        {
            EmitStringElement(e, kind, size, src, rsi, rdi, acc, value);
            EmitStringAdvance(e, kind, rsi, rdi, step, 1);
            if (kind is StringKind.Cmps or StringKind.Scas) e.SetFlags(FlagOp.Sub, size, e.Val, e.T1, e.T2);
            return;
        }
        bool compares = kind is StringKind.Cmps or StringKind.Scas;
        if (compares) e.FlushPending(); // the last compare's flags go to CpuState in the loop; a zero count keeps these
        var interrupted = e.FaultExit(); // RIP on this instruction, registers as far as it got
        Label head = il.Label(), element = il.Label(), next = il.Label(), done = il.Label();
        il.Mark(head);
        e.LoadReg(rcx); il.Emit(OpCodes.Brfalse, done);
        if (kind is StringKind.Movs or StringKind.Stos)
        {
            // n = RepChunk(state, movs, size, count, dst, src, value, step): elements moved at once, 0 for the element path
            e.StringLinear(Register.ES, rdi); il.Load(e.Lin); il.Store(e.T3);
            if (kind == StringKind.Movs) { e.StringLinear(src, rsi); il.Load(e.Lin); il.Store(e.T4); }
            il.Gen.Emit(OpCodes.Ldarg_1); il.ConstI4(kind == StringKind.Movs ? 1 : 0); il.ConstI4(size);
            e.LoadReg(rcx); il.Load(e.T3);
            if (kind == StringKind.Movs) il.Load(e.T4); else il.Const(0);
            if (kind == StringKind.Stos) il.Load(value); else il.Const(0);
            il.Load(step);
            il.Call(StringTables.RepChunk); il.Store(e.T3);
            il.Load(e.T3); il.Emit(OpCodes.Brfalse, element);
            e.LoadReg(rcx); il.Load(e.T3); il.Emit(OpCodes.Sub); il.Store(e.T4); e.StoreReg(rcx, e.T4);
            EmitStringAdvance(e, kind, rsi, rdi, step, 0);
            il.Emit(OpCodes.Br, next);
        }
        il.Mark(element);
        EmitStringElement(e, kind, size, src, rsi, rdi, acc, value);
        e.LoadReg(rcx); il.Const(1); il.Emit(OpCodes.Sub); il.Store(e.T4); e.StoreReg(rcx, e.T4);
        EmitStringAdvance(e, kind, rsi, rdi, step, 1);
        if (compares)
        {
            e.StoreFlagsNow(FlagOp.Sub, size, e.Val, e.T1, e.T2);
            // REPE (F3) goes on while equal, REPNE (F2) while not equal.
            il.Load(e.T1); il.Load(e.T2);
            il.Emit(i.HasRepnePrefix ? OpCodes.Beq : OpCodes.Bne_Un, done);
        }
        il.Mark(next);
        e.LoadReg(rcx); il.Emit(OpCodes.Brfalse, done);
        e.BranchIfExitRequested(interrupted);
        il.Emit(OpCodes.Br, head);
        il.Mark(done);
    }

    /// <summary>One element at RSI/RDI (no register change). MOVS/LODS/CMPS read the source first; CMPS/SCAS leave
    /// the operands in T1 (first) and T2 (second) and their difference in Val; LODS writes the accumulator; STOS stores and
    /// SCAS compares <paramref name="value"/>.</summary>
    static void EmitStringElement(BlockEmitter e, StringKind kind, int size, Register src, Register rsi, Register rdi, Register acc, Local64 value)
    {
        var il = e.Il;
        switch (kind)
        {
            case StringKind.Movs:
                e.StringLinear(src, rsi); e.EmitRead(size); il.Load(e.Val); il.Store(e.T1);
                e.StringLinear(Register.ES, rdi); e.EmitWrite(size, e.T1);
                break;
            case StringKind.Stos:
                e.StringLinear(Register.ES, rdi); e.EmitWrite(size, value);
                break;
            case StringKind.Lods:
                e.StringLinear(src, rsi); e.EmitRead(size); e.StoreReg(acc, e.Val);
                break;
            case StringKind.Cmps:
                e.StringLinear(src, rsi); e.EmitRead(size); il.Load(e.Val); il.Store(e.T1);
                e.StringLinear(Register.ES, rdi); e.EmitRead(size); il.Load(e.Val); il.Store(e.T2);
                il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Sub); il.Truncate(size); il.Store(e.Val);
                break;
            default: // Scas: accumulator minus [RDI]
                il.Load(value); il.Store(e.T1);
                e.StringLinear(Register.ES, rdi); e.EmitRead(size); il.Load(e.Val); il.Store(e.T2);
                il.Load(e.T1); il.Load(e.T2); il.Emit(OpCodes.Sub); il.Truncate(size); il.Store(e.Val);
                break;
        }
    }

    /// <summary>RSI/RDI (those the kind uses) += step * <paramref name="count"/>, or step * T3 when it is 0.</summary>
    static void EmitStringAdvance(BlockEmitter e, StringKind kind, Register rsi, Register rdi, Local64 step, int count)
    {
        var il = e.Il;
        void Advance(Register r)
        {
            e.LoadReg(r); il.Load(step);
            if (count == 0) { il.Load(e.T3); il.Emit(OpCodes.Mul); }
            il.Emit(OpCodes.Add); il.Store(e.Lin);
            e.StoreReg(r, e.Lin);
        }
        if (kind is StringKind.Movs or StringKind.Lods or StringKind.Cmps) Advance(rsi);
        if (kind is not StringKind.Lods) Advance(rdi);
    }

    /// <summary>
    /// Moves (MOVS) or stores (STOS) as many elements of a REP as stay within the current destination (and source) page,
    /// when those pages are in this CPU's TLB: the write TLB holds only RAM pages without translations, so nothing here
    /// needs an SMC check or can fault. Returns the element count done, 0 when the element path must take the next one.
    /// Overlapping MOVS ranges are copied only when a memmove gives what element order gives (the destination below the
    /// source going up, above it going down); otherwise each element sees the ones stored before it.
    /// </summary>
    public static unsafe ulong RepChunk(CpuState* s, int movs, int size, ulong count, ulong dst, ulong src, ulong value, ulong step)
    {
        bool down = (long)step < 0;
        ulong n = Math.Min(count, ElementsInPage(dst, size, down));
        if (movs != 0) n = Math.Min(n, ElementsInPage(src, size, down));
        if (n == 0) return 0;
        ulong back = down ? (n - 1) * (ulong)size : 0;
        byte* d = TlbHost(s->TlbWrite, dst);
        if (d == null) return 0;
        d -= back;
        int bytes = (int)n * size;
        if (movs == 0)
        {
            Interp.StoreElements(d, (int)n, size, value);
            return n;
        }
        byte* p = TlbHost(s->TlbRead, src);
        if (p == null) return 0;
        p -= back;
        bool overlap = d < p + bytes && p < d + bytes;
        if (overlap && (down ? d < p : d > p)) return 0;
        Buffer.MemoryCopy(p, d, bytes, bytes);
        return n;
    }

    /// <summary>Elements from <paramref name="lin"/> on (or down) that lie wholly in its page.</summary>
    static ulong ElementsInPage(ulong lin, int size, bool down)
    {
        ulong off = lin & GuestRam.PageMask;
        if (off + (ulong)size > GuestRam.PageSize) return 0;
        return down ? off / (ulong)size + 1 : (GuestRam.PageSize - off) / (ulong)size;
    }

    static unsafe byte* TlbHost(ulong* tlb, ulong lin)
    {
        ulong* entry = tlb + (((lin >> GuestRam.PageShift) & (CpuState.TlbEntries - 1)) << 1);
        return entry[0] == (lin & ~GuestRam.PageMask) ? (byte*)(lin + entry[1]) : null;
    }
}
