using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Cli;

/// <summary>The built-in demo guest (until the SMP guest lands): a sieve of Eratosthenes and an
/// FNV-1a checksum over it, in 64-bit code assembled with Iced, ending in HLT.</summary>
public static class DemoGuest
{
    public const ulong LoadAddress = 0x10_0000, SieveAddress = 0x20_0000, StackTop = 0x8_0000;

    /// <summary>Returns the code bytes. On HLT: RAX = primes below <paramref name="limit"/>, RBX = FNV-1a of the sieve, repeated <paramref name="rounds"/> times.</summary>
    public static byte[] Build(int limit, int rounds)
    {
        var a = new Assembler(64);
        Label round = a.CreateLabel(), clear = a.CreateLabel(), outer = a.CreateLabel(), inner = a.CreateLabel(),
            next = a.CreateLabel(), count = a.CreateLabel(), notPrime = a.CreateLabel(), hash = a.CreateLabel(), done = a.CreateLabel();
        a.mov(r15, (ulong)rounds);
        a.Label(ref round);
        // clear the sieve: rdi = base, rcx = limit, al = 1 (prime)
        a.mov(rdi, SieveAddress);
        a.mov(rcx, (ulong)limit);
        a.mov(al, 1);
        a.cld();
        a.rep.stosb();
        // for (i = 2; i * i < limit; i++) if (s[i]) for (j = i*i; j < limit; j += i) s[j] = 0
        a.mov(rsi, SieveAddress);
        a.mov(r8, 2);
        a.Label(ref outer);
        a.mov(rax, r8);
        a.imul(rax, r8);
        a.cmp(rax, limit);
        a.jae(count);
        a.cmp(__byte_ptr[rsi + r8], 0);
        a.je(next);
        a.Label(ref inner);
        a.mov(__byte_ptr[rsi + rax], 0);
        a.add(rax, r8);
        a.cmp(rax, limit);
        a.jb(inner);
        a.Label(ref next);
        a.inc(r8);
        a.jmp(outer);
        // count primes and hash the sieve
        a.Label(ref count);
        a.xor(eax, eax);
        a.mov(rbx, 0xcbf29ce484222325UL);
        a.mov(r9, 0x100000001b3UL);
        a.mov(rcx, 2);
        a.Label(ref hash);
        a.movzx(edx, __byte_ptr[rsi + rcx]);
        a.add(rax, rdx);
        a.xor(rbx, rdx);
        a.imul(rbx, r9);
        a.inc(rcx);
        a.cmp(rcx, limit);
        a.jb(hash);
        a.dec(r15);
        a.jnz(round);
        a.Label(ref done);
        a.hlt();
        return CodeBytes.Assemble(a, LoadAddress);
    }
}
