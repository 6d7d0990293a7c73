using DynaSmp.Jit.Interpreter;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Interpreter;

/// <summary>Which instructions tier 0 runs through its resolved fast forms (Interp.FastForms) and which stay with the
/// general dispatch: partial registers, 16-bit operands, LOCK and far or indirect branches must not take the short cut
/// (their semantics are checked against the host by the differential tests, which run tier 0 on both paths).</summary>
public class FastFormTests
{
    static string[] Kinds(int bitness, Action<Assembler> build)
    {
        var a = new Assembler(bitness);
        build(a);
        var w = new Bytes();
        a.Assemble(w, 0x1000);
        var decoder = Decoder.Create(bitness, new ByteArrayCodeReader(w.Data.ToArray()), 0x1000);
        var insns = new List<Instruction>();
        while (decoder.IP < 0x1000 + (ulong)w.Data.Count) insns.Add(decoder.Decode());
        var forms = Interp.FastForms(insns.ToArray());
        return forms.Select(KindOf).ToArray();
    }

    static string KindOf(FastInsn f) => f.Kind.ToString();

    [Fact]
    public void Full_width_register_immediate_and_memory_forms_are_fast()
    {
        var kinds = Kinds(64, a =>
        {
            a.mov(rax, rbx); a.mov(eax, 5); a.mov(rcx, __qword_ptr[rsi + 8]); a.mov(__dword_ptr[rdi], edx);
            a.add(rax, rbx); a.sub(ecx, 3); a.add(rdx, __qword_ptr[rsp + 16]); a.xor(r9d, r9d);
            a.mov(__byte_ptr[rdi], ah); a.mov(__qword_ptr[rdi], -1);
        });
        Assert.Equal(new[] { "MovRR", "MovRI", "MovRM", "MovMR", "AluRR", "AluRI", "AluRM", "AluRR", "MovMR", "MovMI" }, kinds);
    }

    [Fact]
    public void Compares_of_any_size_extensions_lea_nop_and_stack_forms_are_fast()
    {
        var kinds = Kinds(64, a =>
        {
            a.cmp(ah, bl); a.test(al, 0x80); a.cmp(ax, __word_ptr[rsi]); a.test(__byte_ptr[rdi + 3], cl); a.cmp(__qword_ptr[rsp], 0);
            a.movzx(eax, bh); a.movsx(rax, __word_ptr[rsi]); a.movsxd(rdx, ecx); a.lea(rax, __qword_ptr[rbx + rcx * 4 + 8]);
            a.nop(); a.nop(__dword_ptr[rax]); a.push(rbp); a.pop(r12); a.ret();
        });
        Assert.Equal(new[] { "CmpRR", "CmpRI", "CmpRM", "CmpMR", "CmpMI", "ExtendR", "ExtendM", "ExtendR", "Lea", "Nop", "Nop", "Push", "Pop", "Ret" }, kinds);
    }

    [Fact]
    public void Unary_setcc_shift_and_imul_forms_are_fast()
    {
        var kinds = Kinds(64, a =>
        {
            a.inc(eax); a.dec(rcx); a.neg(r8); a.not(edx); a.setne(ah); a.setb(__byte_ptr[rdi]); a.ror(eax, 7); a.shl(rdx, cl);
            a.imul(rax, rbx); a.imul(ecx, __dword_ptr[rsi], 12);
            a.inc(__dword_ptr[rdi]); a.neg(al); a.imul(rbx); a.@lock.inc(__dword_ptr[rdi]);
        });
        Assert.Equal(new[] { "UnaryR", "UnaryR", "UnaryR", "UnaryR", "SetccR", "SetccM", "Shift", "Shift", "Imul", "Imul",
            "None", "None", "None", "None" }, kinds);
    }

    [Fact]
    public void Partial_registers_16_bit_operands_lock_and_other_forms_are_not()
    {
        var kinds = Kinds(64, a =>
        {
            a.mov(ax, bx); a.mov(ah, bl); a.add(al, 1); a.@lock.add(__dword_ptr[rdi], eax); a.adc(rax, rbx);
            a.add(__qword_ptr[rdi], rax); a.jmp(rax); a.mov(rax, cr0); a.mov(ds, ax); a.movzx(ax, bl); a.lea(ax, __word_ptr[rbx]);
            a.push(__qword_ptr[rax]); a.push(ax); a.ret(8); a.call(rax);
        });
        Assert.All(kinds, k => Assert.Equal("None", k));
    }

    [Fact]
    public void Near_relative_branches_are_fast_in_every_code_size()
    {
        foreach (int bits in new[] { 16, 32, 64 })
        {
            var kinds = Kinds(bits, a =>
            {
                var l = a.CreateLabel();
                a.je(l); a.jmp(l); a.call(l); a.Label(ref l); a.hlt();
            });
            Assert.Equal(new[] { "Jcc", "Jmp", "CallRel", "None" }, kinds);
        }
    }

    sealed class Bytes : CodeWriter
    {
        public readonly List<byte> Data = new();
        public override void WriteByte(byte value) => Data.Add(value);
    }

    [Fact]
    public void Sse_forms_with_a_fast_path_helper_try_it_and_the_rest_stay_general()
    {
        var kinds = Kinds(64, a =>
        {
            a.mulsd(xmm1, xmm2); a.addpd(xmm0, __xmmword_ptr[rsi]); a.comisd(xmm3, __qword_ptr[rdi]); a.cvtsi2sd(xmm4, rax);
            a.cmpsd(xmm5, xmm6, 1); a.sqrtss(xmm7, __dword_ptr[rbx]);
            a.cmpsd(); a.movsd(xmm1, xmm2); a.pxor(xmm1, xmm2); a.vaddsd(xmm1, xmm2, xmm3); a.cvttsd2si(eax, xmm1);
        });
        Assert.Equal(new[] { "SseXmm", "SseXmm", "SseXmm", "SseXmm", "SseXmm", "SseXmm", "None", "None", "None", "None", "None" }, kinds);
    }
}
