using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;

namespace DynaSmp.Tests.Differential;

/// <summary>
/// Runs test code once in DynaSmp the way every differential harness needs it: the bytes and a HLT at
/// <see cref="NativeRunner.TestRip"/>, a fresh CPU in flat 64- or 32-bit mode with the input registers, the block
/// compiled up front for the compiled tier (CompileFirst still interprets a block's first run), then cleaned up.
/// </summary>
public static unsafe class EmulatedRun
{
    /// <summary>Runs <paramref name="code"/> and returns what <paramref name="read"/> takes from the CPU before it is
    /// disposed. Memory other than the code (buffers, stack) is the caller's to write beforehand. <paramref name="compiledOptions"/>
    /// replaces <see cref="JitOptions.CompileFirst"/> for the compiled tier (it must compile first too).</summary>
    public static T Run<T>(GuestRam ram, ReadOnlySpan<byte> code, MachineState input, bool compiled, bool flat32, ulong budget,
        Func<CpuCore, ExitReason, T> read, Action<CpuCore>? setup = null, JitOptions? compiledOptions = null)
    {
        var bytes = new byte[code.Length + 1];
        code.CopyTo(bytes);
        bytes[^1] = 0xF4; // HLT
        ram.Write(NativeRunner.TestRip, bytes);
        var cache = new BlockCache(ram);
        using var cpu = new CpuCore(ram, EmptyBus.Instance, cache, compiled ? compiledOptions ?? JitOptions.CompileFirst : JitOptions.InterpretOnly);
        CpuState* s = cpu.State;
        if (flat32) cpu.SetFlat32(NativeRunner.TestRip, input.Gpr[4]);
        else cpu.SetFlat64(NativeRunner.TestRip, input.Gpr[4]);
        s->Cr4 |= 0x600; // OSFXSR | OSXMMEXCPT, as under Linux
        s->Mxcsr = 0x1F80;
        for (int k = 0; k < 16; k++) s->Gpr[k] = input.Gpr[k];
        Flags.Set(s, input.Rflags);
        for (int k = 0; k < 32; k++) s->Xmm[k] = input.Xmm[k];
        setup?.Invoke(cpu);
        Block? block = null;
        try
        {
            if (compiled)
            {
                block = cpu.Lookup();
                if (block != null) TierUp.CompileNow(cpu, block);
            }
            return read(cpu, cpu.Run(budget));
        }
        finally
        {
            ram.ClearCodePage(NativeRunner.TestRip >> GuestRam.PageShift);
        }
    }
}
