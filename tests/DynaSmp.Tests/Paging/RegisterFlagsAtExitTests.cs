using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Differential;
using Iced.Intel;
using static DynaSmp.Tests.Paging.PagingGuest;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Paging;

/// <summary>Precise flags where translated code leaves in the middle of a block: an ALU instruction (ADD, SUB, CMP, AND,
/// OR, XOR, TEST of a register with a register or an immediate) right before an access that leaves the method, a page
/// fault (read and write) or a store into translated code. Tier 1 keeps that instruction's flag record in locals and
/// stores it only on those exits; the flags the guest sees there must be those the host CPU computes for the same
/// instruction and operands.</summary>
public unsafe class RegisterFlagsAtExitTests
{
    const ulong Data = 0x4000_0000;     // PML4[0] PDPT[1] PD[0] PT[0]: three pages mapped, the fourth faults

    static readonly string[] Ops = ["Add", "Sub", "Cmp", "And", "Or", "Xor", "Test"];

    // Operand pairs: signed and unsigned overflow, a zero result, auxiliary carry, upper-half garbage under a 32-bit
    // operation (the record must use only the low half of each register).
    static readonly (ulong A, ulong B)[] Operands =
    [
        (0x0000_0000_7FFF_FFFF, 0x0000_0000_0000_0001),
        (0xFFFF_FFFF_FFFF_FFF0, 0x0000_0000_0000_0010),
        (0xDEAD_BEEF_8000_0000, 0x0000_0000_8000_0000),
        (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321),
        (0x8000_0000_0000_0005, 0x8000_0000_0000_0005),
    ];

    public static TheoryData<string, int, bool, int> Cases()
    {
        var d = new TheoryData<string, int, bool, int>();
        foreach (var op in Ops)
            foreach (int bits in new[] { 32, 64 })
                foreach (bool imm in new[] { false, true })
                    for (int v = 0; v < Operands.Length; v++) d.Add(op, bits, imm, v);
        return d;
    }

    static Instruction AluInstruction(string op, int bits, bool imm, ulong b)
    {
        var code = Enum.Parse<Code>($"{op}_rm{bits}_{(imm ? "imm32" : $"r{bits}")}");
        var dst = bits == 64 ? Register.RAX : Register.EAX;
        return imm ? Instruction.Create(code, dst, (int)(uint)b) : Instruction.Create(code, dst, bits == 64 ? Register.RCX : Register.ECX);
    }

    /// <summary>The status flags the host CPU leaves after the instruction (AF is undefined after a logic operation: 0).</summary>
    static ulong NativeFlags(string op, int bits, bool imm, ulong a, ulong b)
    {
        var i = AluInstruction(op, bits, imm, b);
        var w = new CodeBytes();
        Encoder.Create(64, w).Encode(i, NativeRunner.TestRip);
        var input = new MachineState { Rflags = 0x2 | RFlags.CF | RFlags.AF };
        input.Gpr[0] = a;
        input.Gpr[1] = b;
        MachineState output;
        lock (NativeRunner.Lock) output = NativeRunner.Run(w.ToArray(), input);
        return output.Rflags & StatusOf(op);
    }

    static ulong StatusOf(string op) => op is "And" or "Or" or "Xor" or "Test" ? RFlags.Status & ~RFlags.AF : RFlags.Status;

    /// <summary>A loop whose body loads both operands, runs the instruction, then accesses [RBX] and moves RBX a page on:
    /// compiled after its first pass, it faults in its fourth, in translated code, right after the instruction.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void Fault_after_the_instruction_sees_its_flags(string op, int bits, bool imm, int operands)
    {
        Assert.Null(NativeRunner.Unavailable);
        var (a, b) = Operands[operands];
        foreach (bool write in new[] { false, true })
        {
            var (g, pml4) = LongMode(1, asm =>
            {
                var top = asm.CreateLabel();
                asm.Label(ref top);
                asm.mov(rax, a);
                asm.mov(rcx, b);
                asm.AddInstruction(AluInstruction(op, bits, imm, b));
                if (write) asm.mov(__qword_ptr[rbx], rdx); else asm.mov(rdx, __qword_ptr[rbx]);
                asm.add(rbx, 0x1000);
                asm.jmp(top);
            });
            using var _ = g;
            for (ulong p = 0; p < 3; p++) g.Map64(pml4, Data + p * 0x1000, 0x20_0000 + p * 0x1000, P | RW | A | D);
            g.Cpu.Gpr(3) = Data;
            g.AssertPageFault(write ? 2UL : 0UL, Data + 0x3000);
            Assert.True(g.Cpu.Cache.Compilations > 0, "the loop was never compiled");
            ulong want = NativeFlags(op, bits, imm, a, b);
            Assert.Equal(want, Flags.Get(g.S) & StatusOf(op));
        }
    }

    /// <summary>The instruction, then a MOV store that rewrites the translated code after it on the third pass (leaving
    /// translated code after the store), then an ADD whose memory operand faults in that pass before it writes the flags:
    /// the fault sees the flags of the instruction in that pass.</summary>
    [Theory, MemberData(nameof(Cases))]
    public void Store_into_translated_code_after_the_instruction_keeps_its_flags(string op, int bits, bool imm, int operands)
    {
        Assert.Null(NativeRunner.Unavailable);
        var (a, b) = Operands[operands];
        using var g = LongMode(1, asm =>
        {
            Label top = asm.CreateLabel(), next = asm.CreateLabel(), after = asm.CreateLabel();
            asm.mov(r9d, 3);
            // The store's target in the last pass: the bytes of the instruction right after it, rewritten with their own
            // value, so the translation holding them is dropped and the store leaves translated code.
            asm.lea(rsi, __[after]);
            asm.mov(edx, __dword_ptr[rsi]);
            asm.Label(ref top);
            asm.mov(rax, r12);
            asm.mov(rcx, r13);
            asm.AddInstruction(AluInstruction(op, bits, imm, b));
            asm.mov(__dword_ptr[rdi], edx);
            asm.Label(ref after);
            asm.add(rbx, __qword_ptr[r10]); // faults in the last pass before it replaces the flags
            asm.dec(r9d);
            asm.cmp(r9d, 1);
            asm.jne(next);
            // The last pass: the operands under test, the store into the code, the fault.
            asm.mov(rdi, rsi);
            asm.mov(r12, r14);
            asm.mov(r13, r15);
            asm.mov(r10, r11);
            asm.Label(ref next);
            asm.jmp(top);
        }).G;
        g.Cpu.Gpr(7) = 0x6000;  // RDI: a data page
        g.Cpu.Gpr(10) = 0x6000; // R10: the same page; R11: not mapped
        g.Cpu.Gpr(11) = Data;
        // Other operands before the last pass, so that no record an earlier pass left behind can stand in for its own.
        (g.Cpu.Gpr(12), g.Cpu.Gpr(13), g.Cpu.Gpr(14), g.Cpu.Gpr(15)) = (~a, a ^ b, a, b);
        g.AssertPageFault(0, Data);
        Assert.True(g.Cpu.CodeWriteInvalidations > 0, "no store dropped a translation");
        Assert.Equal(NativeFlags(op, bits, imm, a, b), Flags.Get(g.S) & StatusOf(op));
    }
}
