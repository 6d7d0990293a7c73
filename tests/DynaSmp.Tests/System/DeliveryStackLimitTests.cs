using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>Interrupt delivery in 32-bit protected mode checks the frame against the stack segment's limit
/// (SDM Vol. 3A 6.12.1): a frame that does not fit raises #SS and leaves ESP and EIP as they were.</summary>
public unsafe class DeliveryStackLimitTests
{
    const ulong Gdt = 0x6000, Idt = 0x3000, Handler = 0x4000, Main = 0x1000;

    static (GuestRam, CpuCore) Machine(int tier, uint ssLimit, uint esp)
    {
        var options = tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst;
        var ram = new GuestRam(1 << 20);
        ram.Write(Gdt, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0x00CF9A000000FFFFUL), .. BitConverter.GetBytes(0x00CF92000000FFFFUL)]);
        ulong gate = (Handler & 0xFFFF) | (0x08UL << 16) | (0x8EUL << 40) | (((Handler >> 16) & 0xFFFF) << 48);
        ram.Write(Idt + 0x40 * 8, BitConverter.GetBytes(gate));
        ram.Write(Handler, [0xF4]);           // hlt
        ram.Write(Main, [0xCD, 0x40, 0xF4]);  // int 0x40; hlt
        var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), options);
        cpu.SetFlat32(Main, esp);
        cpu.State->GdtrBase = Gdt; cpu.State->GdtrLimit = 23;
        cpu.State->IdtrBase = Idt; cpu.State->IdtrLimit = 256 * 8 - 1;
        cpu.State->Ss.Limit = ssLimit;
        cpu.ExceptionIntercept = 1u << Vector.SS; // report #SS; deliver everything else
        return (ram, cpu);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_frame_that_fits_reaches_the_handler(int tier)
    {
        var (ram, cpu) = Machine(tier, 0xFFF, 0x800);
        using var _r = ram; using var _c = cpu;
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        Assert.Equal(Handler + 1, cpu.State->Rip);
        Assert.Equal(0x800UL - 12, cpu.Gpr(4)); // EFLAGS, CS, EIP
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_frame_past_the_SS_limit_raises_SS_and_changes_nothing(int tier)
    {
        // ESP 0x806, limit 0x7FF: EFLAGS would go to 0x802..0x805, past the limit.
        var (ram, cpu) = Machine(tier, 0x7FF, 0x806);
        using var _r = ram; using var _c = cpu;
        Assert.Equal(ExitReason.Exception, cpu.Run());
        Assert.Equal(Vector.SS, cpu.ExitVector);
        Assert.Equal(0UL, cpu.ExitErrorCode); // same stack: #SS(0); INT n is a software event (EXT = 0)
        Assert.Equal(Main, cpu.State->Rip);
        Assert.Equal(0x806UL, cpu.Gpr(4));
    }
}
