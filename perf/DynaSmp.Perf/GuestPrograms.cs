using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Perf;

/// <summary>The compute loops measured in guest MIPS. Each takes RDI = a 64 KiB buffer and
/// RSI = iteration count, so the same bytes also run natively (System V: rdi, rsi are the first two arguments).</summary>
public static class GuestPrograms
{
    public static readonly string[] Names = ["AluLoop10", "AluLoop10Ilp", "MemoryLoop", "BranchLoop", "CallLoop"];

    /// <summary>Guest instructions executed per iteration, for MIPS.</summary>
    public static int InstructionsPerIteration(string name) => name switch
    {
        "AluLoop10" => 10,
        "AluLoop10Ilp" => 10,
        "MemoryLoop" => 10,
        "BranchLoop" => 8, // the average: the taken/not-taken paths differ by one
        _ => 9,
    };

    /// <summary>Assembles <paramref name="name"/> at <paramref name="address"/>, ending in HLT (guest) or RET (native).</summary>
    public static byte[] Assemble(string name, ulong address, bool native)
    {
        var a = new Assembler(64);
        var loop = a.CreateLabel();
        switch (name)
        {
            case "AluLoop10":
                // The register-only 10-instruction loop the targets are stated for.
                a.xor(eax, eax); a.mov(edx, 1); a.mov(r8d, 3);
                a.Label(ref loop);
                a.add(rax, rdx); a.xor(rdx, rax); a.lea(r8, __[r8 + rax * 2 + 1]); a.sub(rax, r8); a.and(rdx, 0xFFFF);
                a.or(rax, 3); a.shl(r8, 1); a.inc(rdx);
                a.dec(rsi); a.jnz(loop);
                break;
            case "AluLoop10Ilp":
                // Ten register instructions in four independent chains, so the host can overlap them.
                a.xor(eax, eax); a.xor(edx, edx); a.xor(r8d, r8d); a.xor(r9d, r9d);
                a.Label(ref loop);
                a.add(rax, 3); a.add(rdx, rsi); a.xor(r8, rsi); a.sub(r9, 7); a.add(rax, rdx);
                a.or(r8, 1); a.lea(r9, __[r9 + rsi * 2]); a.and(edx, 0xFFFFF);
                a.dec(rsi); a.jnz(loop);
                break;
            case "MemoryLoop":
                // Walks a 64 KiB buffer: load, modify, store, as a checksum-and-update loop would.
                a.xor(eax, eax); a.xor(ecx, ecx);
                a.Label(ref loop);
                a.mov(rdx, __qword_ptr[rdi + rcx]); a.add(rax, rdx); a.add(rdx, 1); a.mov(__qword_ptr[rdi + rcx], rdx);
                a.add(rcx, 8); a.and(ecx, 0xFFF8); a.mov(r8, __qword_ptr[rdi + rcx]); a.xor(rax, r8);
                a.dec(rsi); a.jnz(loop);
                break;
            case "BranchLoop":
            {
                // Data-dependent branches: two blocks per iteration, chained.
                var odd = a.CreateLabel(); var join = a.CreateLabel();
                a.xor(eax, eax); a.xor(ecx, ecx);
                a.Label(ref loop);
                a.inc(rcx); a.test(ecx, 1); a.jnz(odd);
                a.add(rax, rcx); a.jmp(join);
                a.Label(ref odd);
                a.sub(rax, 3);
                a.Label(ref join);
                a.cmp(rcx, rsi); a.jb(loop);
                break;
            }
            default:
            {
                // A call and a return every iteration (return through the jump cache).
                var fn = a.CreateLabel(); var start = a.CreateLabel();
                a.jmp(start);
                a.Label(ref fn);
                a.add(rax, rcx); a.xor(rax, 5); a.ret();
                a.Label(ref start);
                a.xor(eax, eax); a.xor(ecx, ecx);
                a.Label(ref loop);
                a.inc(rcx); a.call(fn); a.cmp(rcx, rsi); a.jb(loop);
                a.add(rax, 0); a.add(rax, 0);
                break;
            }
        }
        if (native) a.ret(); else a.hlt();
        return CodeBytes.Assemble(a, address);
    }
}
