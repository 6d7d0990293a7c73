using System.Runtime.InteropServices;
using DynaSmp.Jit;
using Iced.Intel;

namespace DynaSmp.Tests.Differential;

/// <summary>Register file of one differential case: the 16 GPRs in encoding order, RFLAGS, XMM0-15 (low qword first).</summary>
public sealed class MachineState
{
    public readonly ulong[] Gpr = new ulong[16];
    public ulong Rflags;
    public readonly ulong[] Xmm = new ulong[32];

    public MachineState Clone()
    {
        var c = new MachineState { Rflags = Rflags };
        Gpr.CopyTo(c.Gpr, 0);
        Xmm.CopyTo(c.Xmm, 0);
        return c;
    }
}

/// <summary>
/// Runs one instruction on the host CPU. Everything lives in one mapping at a fixed low host address, so the
/// same register values (pointers into the data buffer and the stack, RIP-relative operands) mean the same
/// thing natively and in a guest whose RAM covers that address range.
/// </summary>
/// <remarks>
/// Layout (offsets from <see cref="Base"/>): 0x000 entry stub, 0x400 exit stub, 0x800 the test instruction
/// (<see cref="TestRip"/>) followed by a JMP to the exit stub; 0x1000 state block; 0x2000-0x4000 data buffer
/// (two pages, so unaligned operands can straddle a page boundary); 0x10000-0x40000 stack. Signal handlers
/// may run on the test stack while the test instruction executes; the kernel skips the 128-byte red zone,
/// so only stack memory at or above RSP-128 is compared.
/// </remarks>
public static unsafe partial class NativeRunner
{
    public const ulong RegionSize = 0x40000;
    const ulong EntryOffset = 0x000, ExitOffset = 0x400, TestOffset = 0x800, StateOffset = 0x1000;
    public const ulong BufferOffset = 0x2000;
    public const int BufferSize = 0x2000;
    const ulong StackTopOffset = 0x3F000;
    /// <summary>Compared stack window around the test RSP: [RSP - 128, RSP + 256).</summary>
    public const int StackBelow = 128, StackAbove = 256;

    // State block layout.
    const int InGpr = 0x000, InFlags = 0x080, HostRsp = 0x088, InXmm = 0x100, OutGpr = 0x200, OutFlags = 0x280, OutXmm = 0x300;

    static readonly ulong[] Candidates = [0x0100_0000, 0x0200_0000, 0x0800_0000, 0x1000_0000, 0x3000_0000, 0x6000_0000];
    static readonly object Gate = new();
    static byte* _base;
    static string? _unavailable;

    /// <summary>Host (and guest-physical) address of the region.</summary>
    /// <summary>The runner's fixed region; maps it on first use, so no caller can compute addresses from a null base.</summary>
    public static ulong Base
    {
        get
        {
            if (_base == null) Init();
            return _base != null ? (ulong)_base : throw new InvalidOperationException("native runner unavailable: " + _unavailable);
        }
    }
    public static ulong TestRip => Base + TestOffset;
    public static ulong BufferAddress => Base + BufferOffset;
    /// <summary>Default test RSP; cases may move it by a few qwords.</summary>
    public static ulong StackTop => Base + StackTopOffset;

    /// <summary>Null when the runner works; otherwise why the suite is skipped.</summary>
    public static string? Unavailable
    {
        get { Init(); return _unavailable; }
    }

    public static object Lock => Gate;

    static void Init()
    {
        lock (Gate)
        {
            if (_base != null || _unavailable != null) return;
            if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            {
                _unavailable = "the differential suite needs a Linux x64 host";
                return;
            }
            const int ProtRw = 3, ProtRwx = 7, MapPrivateAnon = 0x02 | 0x20, MapFixedNoReplace = 0x100000;
            foreach (ulong want in Candidates)
            {
                void* p = Mmap((void*)want, (nuint)RegionSize, ProtRw, MapPrivateAnon | MapFixedNoReplace, -1, 0);
                if (p == (void*)-1) continue;
                if ((ulong)p != want) { Munmap(p, (nuint)RegionSize); continue; } // an old kernel treated it as a hint
                if (Mprotect(p, 0x1000, ProtRwx) != 0) { Munmap(p, (nuint)RegionSize); _unavailable = "cannot map an executable page"; return; }
                _base = (byte*)p;
                BuildStubs();
                return;
            }
            _unavailable = "no fixed low address was free for the native runner";
        }
    }

    static MemoryOperand Rip(ulong offset) => new(Register.RIP, (long)(Base + offset));

    static readonly Register[] Gprs =
    [
        Register.RAX, Register.RCX, Register.RDX, Register.RBX, Register.RSP, Register.RBP, Register.RSI, Register.RDI,
        Register.R8, Register.R9, Register.R10, Register.R11, Register.R12, Register.R13, Register.R14, Register.R15,
    ];

    static void BuildStubs()
    {
        Register[] saved = [Register.RBX, Register.RBP, Register.R12, Register.R13, Register.R14, Register.R15];
        var entry = new List<Instruction>();
        foreach (var r in saved) entry.Add(Instruction.Create(Code.Push_r64, r));
        entry.Add(Instruction.Create(Code.Mov_rm64_r64, Rip(StateOffset + HostRsp), Register.RSP));
        entry.Add(Instruction.Create(Code.Push_rm64, Rip(StateOffset + InFlags)));
        entry.Add(Instruction.Create(Code.Popfq));
        for (int k = 0; k < 16; k++)
            entry.Add(Instruction.Create(Code.Movdqu_xmm_xmmm128, Register.XMM0 + k, Rip(StateOffset + InXmm + (ulong)k * 16)));
        for (int k = 0; k < 16; k++)
            if (k != 4) entry.Add(Instruction.Create(Code.Mov_r64_rm64, Gprs[k], Rip(StateOffset + InGpr + (ulong)k * 8)));
        entry.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RSP, Rip(StateOffset + InGpr + 4 * 8)));
        entry.Add(Instruction.CreateBranch(Code.Jmp_rel32_64, TestRip));
        Encode(entry, Base + EntryOffset, 0x400);

        var exit = new List<Instruction>();
        for (int k = 0; k < 16; k++) exit.Add(Instruction.Create(Code.Mov_rm64_r64, Rip(StateOffset + OutGpr + (ulong)k * 8), Gprs[k]));
        for (int k = 0; k < 16; k++)
            exit.Add(Instruction.Create(Code.Movdqu_xmmm128_xmm, Rip(StateOffset + OutXmm + (ulong)k * 16), Register.XMM0 + k));
        exit.Add(Instruction.Create(Code.Mov_r64_rm64, Register.RSP, Rip(StateOffset + HostRsp)));
        exit.Add(Instruction.Create(Code.Pushfq));
        exit.Add(Instruction.Create(Code.Pop_rm64, Rip(StateOffset + OutFlags)));
        exit.Add(Instruction.Create(Code.Cld)); // the SysV ABI requires DF clear on return
        for (int k = saved.Length - 1; k >= 0; k--) exit.Add(Instruction.Create(Code.Pop_r64, saved[k]));
        exit.Add(Instruction.Create(Code.Retnq));
        Encode(exit, Base + ExitOffset, 0x400);
    }

    static void Encode(List<Instruction> insns, ulong rip, int maxLen)
    {
        var w = new CodeBytes();
        if (!BlockEncoder.TryEncode(64, new InstructionBlock(w, insns, rip), out string? err, out _))
            throw new InvalidOperationException("native stub: " + err);
        byte[] code = w.ToArray();
        if (code.Length > maxLen) throw new InvalidOperationException("native stub too long");
        for (int k = 0; k < code.Length; k++) _base[rip - Base + (ulong)k] = code[k];
    }

    /// <summary>Runs <paramref name="code"/> (one instruction at <see cref="TestRip"/>) from <paramref name="input"/>
    /// with the data buffer and stack window already in place; returns the state after it. Callers hold <see cref="Lock"/>.</summary>
    public static MachineState Run(ReadOnlySpan<byte> code, MachineState input)
    {
        if (code.Length > 0x700) throw new ArgumentException("code too long", nameof(code));
        byte* t = _base + TestOffset;
        code.CopyTo(new Span<byte>(t, code.Length));
        // JMP rel32 to the exit stub.
        byte* j = t + code.Length;
        j[0] = 0xE9;
        *(int*)(j + 1) = (int)((long)(Base + ExitOffset) - (long)(TestRip + (ulong)code.Length + 5));
        ulong* st = (ulong*)(_base + StateOffset);
        for (int k = 0; k < 16; k++) st[InGpr / 8 + k] = input.Gpr[k];
        st[InFlags / 8] = input.Rflags;
        for (int k = 0; k < 32; k++) st[InXmm / 8 + k] = input.Xmm[k];
        ((delegate* unmanaged<void>)(_base + EntryOffset))();
        var o = new MachineState { Rflags = st[OutFlags / 8] };
        for (int k = 0; k < 16; k++) o.Gpr[k] = st[OutGpr / 8 + k];
        for (int k = 0; k < 32; k++) o.Xmm[k] = st[OutXmm / 8 + k];
        return o;
    }

    /// <summary>Host memory at a region address (data buffer, stack).</summary>
    public static Span<byte> Memory(ulong address, int length)
    {
        if (address < Base || address + (ulong)length > Base + RegionSize) throw new ArgumentOutOfRangeException(nameof(address));
        return new Span<byte>(_base + (address - Base), length);
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* addr, nuint length);

    [LibraryImport("libc", EntryPoint = "mprotect")]
    private static partial int Mprotect(void* addr, nuint length, int prot);
}
