using System.Runtime.InteropServices;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Jit.Interpreter;

/// <summary>
/// A 16-byte host compare-and-exchange for LOCK CMPXCHG16B. .NET has no 128-bit Interlocked API, so on
/// x64 Linux a tiny native stub (<c>lock cmpxchg16b [rdi]</c>) is assembled with Iced into an mmap'ed
/// executable page at first use. Elsewhere a striped lock is used instead; see <see cref="CompareExchangeLocked"/>
/// for what that does not guarantee.
/// </summary>
public static unsafe class Cmpxchg16bHost
{
    // System V x64: rdi = target (16-byte aligned), rsi = ulong[2] expected in / found out, rdx = ulong[2] desired.
    // Returns 1 when the exchange happened.
    static readonly delegate* unmanaged[SuppressGCTransition]<byte*, ulong*, ulong*, int> Stub = CreateStub();

    static readonly object[] Stripes = CreateStripes();

    /// <summary>Compares the 16 bytes at <paramref name="p"/> with lo:hi; stores newLo:newHi on a match. lo/hi
    /// receive the value found. <paramref name="p"/> must be 16-byte aligned.</summary>
    public static bool CompareExchange(byte* p, ref ulong lo, ref ulong hi, ulong newLo, ulong newHi)
    {
        if (Stub == null) return CompareExchangeLocked(p, ref lo, ref hi, newLo, newHi);
        ulong* expected = stackalloc ulong[2];
        ulong* desired = stackalloc ulong[2];
        expected[0] = lo; expected[1] = hi;
        desired[0] = newLo; desired[1] = newHi;
        int ok = Stub(p, expected, desired);
        lo = expected[0]; hi = expected[1];
        return ok != 0;
    }

    /// <summary>Fallback without a native stub: a lock per 16-byte line stripe. It makes LOCK CMPXCHG16B atomic
    /// only against other LOCK CMPXCHG16B on the same line; it does NOT guarantee atomicity against 8-byte
    /// locked operations or plain stores by other vCPUs to those 16 bytes, and a reader may see a torn value.</summary>
    public static bool CompareExchangeLocked(byte* p, ref ulong lo, ref ulong hi, ulong newLo, ulong newHi)
    {
        lock (Stripes[((nuint)p >> 4) & (nuint)(Stripes.Length - 1)])
        {
            ulong* q = (ulong*)p;
            ulong curLo = Volatile.Read(ref q[0]), curHi = Volatile.Read(ref q[1]);
            bool eq = curLo == lo && curHi == hi;
            if (eq) { Volatile.Write(ref q[0], newLo); Volatile.Write(ref q[1], newHi); }
            lo = curLo; hi = curHi;
            return eq;
        }
    }

    static object[] CreateStripes()
    {
        var a = new object[64];
        for (int k = 0; k < a.Length; k++) a[k] = new object();
        return a;
    }

    static delegate* unmanaged[SuppressGCTransition]<byte*, ulong*, ulong*, int> CreateStub()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        var a = new Assembler(64);
        a.push(rbx);
        a.mov(r8, rdx);
        a.mov(rax, __qword_ptr[rsi]);
        a.mov(rdx, __qword_ptr[rsi + 8]);
        a.mov(rbx, __qword_ptr[r8]);
        a.mov(rcx, __qword_ptr[r8 + 8]);
        a.@lock.cmpxchg16b(__xmmword_ptr[rdi]);
        a.mov(__qword_ptr[rsi], rax);
        a.mov(__qword_ptr[rsi + 8], rdx);
        a.sete(al);
        a.movzx(eax, al);
        a.pop(rbx);
        a.ret();
        var code = new StubWriter();
        a.Assemble(code, 0);

        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        nint page = mmap(0, 4096, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1 || page == 0) return null;
        new ReadOnlySpan<byte>(code.Bytes, 0, code.Length).CopyTo(new Span<byte>((void*)page, 4096));
        if (mprotect(page, 4096, ProtRead | ProtExec) != 0) return null;
        return (delegate* unmanaged[SuppressGCTransition]<byte*, ulong*, ulong*, int>)page;
    }

    sealed class StubWriter : CodeWriter
    {
        public readonly byte[] Bytes = new byte[256];
        public int Length;
        public override void WriteByte(byte value) => Bytes[Length++] = value;
    }

    [DllImport("libc", EntryPoint = "mmap")]
    static extern nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "mprotect")]
    static extern int mprotect(nint addr, nuint length, int prot);
}
