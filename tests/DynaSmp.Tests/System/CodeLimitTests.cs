using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>Near branches in 16/32-bit protected mode check the target against the CS limit: #GP(0) on the
/// branch itself, nothing changed (SDM Vol. 2 JMP, CALL, RET, Jcc "Protected Mode Exceptions").</summary>
public unsafe class CodeLimitTests
{
    const ulong Main = 0x1000;

    static (GuestRam, CpuCore) Machine(int tier, byte[] code, uint csLimit)
    {
        var ram = new GuestRam(1 << 20);
        ram.Write(Main, code);
        var cpu = new CpuCore(ram, EmptyBus.Instance, new BlockCache(ram), tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst);
        cpu.SetFlat32(Main, 0x8000);
        cpu.State->Cs.Limit = csLimit;
        return (ram, cpu);
    }

    [Theory]
    [InlineData(0, new byte[] { 0xE9, 0xFB, 0x0F, 0x00, 0x00 }, 0x1FFF)] // jmp rel32 -> 0x2000
    [InlineData(1, new byte[] { 0xE9, 0xFB, 0x0F, 0x00, 0x00 }, 0x1FFF)]
    [InlineData(0, new byte[] { 0xE8, 0xFB, 0x0F, 0x00, 0x00 }, 0x1FFF)] // call rel32 -> 0x2000
    [InlineData(1, new byte[] { 0xE8, 0xFB, 0x0F, 0x00, 0x00 }, 0x1FFF)]
    [InlineData(0, new byte[] { 0x74, 0x7E }, 0x107F)]                    // je +0x7E -> 0x1080 (ZF set below)
    public void A_branch_past_the_CS_limit_faults_on_the_branch(int tier, byte[] code, uint limit)
    {
        var (ram, cpu) = Machine(tier, code, limit);
        using var _r = ram; using var _c = cpu;
        Flags.Set(cpu.State, 0x2 | RFlags.ZF);
        Assert.Equal(ExitReason.Exception, cpu.Run());
        Assert.Equal(Vector.GP, cpu.ExitVector);
        Assert.Equal(0UL, cpu.ExitErrorCode);
        Assert.Equal(Main, cpu.State->Rip);
        Assert.Equal(0x8000UL, cpu.Gpr(4)); // a faulting CALL pushed nothing
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_branch_to_the_last_byte_inside_the_limit_is_fine(int tier)
    {
        var (ram, cpu) = Machine(tier, [0xE9, 0xFB, 0x0F, 0x00, 0x00], 0x2000); // jmp -> 0x2000, limit 0x2000
        using var _r = ram; using var _c = cpu;
        ram.Write(0x2000, [0xF4]);
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        Assert.Equal(0x2001UL, cpu.State->Rip);
    }
}
