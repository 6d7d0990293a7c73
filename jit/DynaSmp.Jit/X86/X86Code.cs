using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;
using Iced.Intel;

namespace DynaSmp.Jit.X86;

/// <summary>Where a decoded instruction sits in the code stream: its own and next address at the code size, whether a
/// block must end after it, whether it opens an interrupt shadow. The decoder, both tiers and the dispatcher ask.</summary>
public static class X86Code
{
    /// <summary>Instructions after which translated code must return to the dispatcher: control transfers,
    /// and anything that can change how the following bytes decode or execute.</summary>
    public static bool EndsBlock(in Instruction i)
    {
        if (i.FlowControl != FlowControl.Next) return true;
        switch (i.Mnemonic)
        {
            case Mnemonic.Hlt: case Mnemonic.Popf: case Mnemonic.Popfd: case Mnemonic.Popfq: case Mnemonic.Sti:
            case Mnemonic.Wrmsr: case Mnemonic.Lmsw: case Mnemonic.Clts: case Mnemonic.Invlpg: case Mnemonic.Lgdt:
            case Mnemonic.Lidt: case Mnemonic.Lldt: case Mnemonic.Ltr: case Mnemonic.Cpuid: case Mnemonic.Serialize:
            case Mnemonic.In: case Mnemonic.Out: case Mnemonic.Insb: case Mnemonic.Insw: case Mnemonic.Insd:
            case Mnemonic.Outsb: case Mnemonic.Outsw: case Mnemonic.Outsd: case Mnemonic.Swapgs:
            case Mnemonic.Fxrstor: case Mnemonic.Fxrstor64: case Mnemonic.Ldmxcsr:
            case Mnemonic.Lss: case Mnemonic.Lds: case Mnemonic.Les: case Mnemonic.Lfs: case Mnemonic.Lgs: case Mnemonic.Syscall: case Mnemonic.Sysret: case Mnemonic.Sysretq:
            case Mnemonic.Sysenter: case Mnemonic.Sysexit: case Mnemonic.Sysexitq:
                return true;
            case Mnemonic.Mov: case Mnemonic.Pop:
                return i.Op0Kind == OpKind.Register && (i.Op0Register.IsSegmentRegister() || i.Op0Register.IsCR() || i.Op0Register.IsDR());
        }
        return false;
    }

    /// <summary>STI, MOV SS and POP SS: the instruction after them runs before interrupts are looked at, and only the
    /// dispatcher's interrupt-shadow step does that, so translated code leaves to it rather than chaining on.</summary>
    public static bool MayStartInterruptShadow(in Instruction i) =>
        i.Mnemonic == Mnemonic.Sti || (i.Mnemonic is Mnemonic.Mov or Mnemonic.Pop && i.Op0Kind == OpKind.Register && i.Op0Register == Register.SS);

    /// <summary>The instruction's own address, wrapped to the code size (only fault paths need it).</summary>
    public static ulong IpOf(in Instruction i, ExecMode mode) => (mode & ExecMode.SizeMask) switch
    {
        ExecMode.Code64 => i.IP,
        ExecMode.Code32 => i.IP & 0xFFFF_FFFF,
        _ => i.IP & 0xFFFF,
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong NextIp(in Instruction i, ExecMode mode) => (mode & ExecMode.SizeMask) switch
    {
        ExecMode.Code64 => i.NextIP,
        ExecMode.Code32 => i.NextIP & 0xFFFF_FFFF,
        _ => i.NextIP & 0xFFFF,
    };
}
