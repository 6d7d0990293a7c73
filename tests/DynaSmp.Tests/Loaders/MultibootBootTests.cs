using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using DynaSmp.Machine;
using DynaSmp.Machine.Devices;
using DynaSmp.Machine.Loaders;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Loaders;

/// <summary>End to end: a hand-built multiboot ELF runs on the CPU core with the devices behind a port bus.</summary>
public class MultibootBootTests
{
    sealed class PortBus(IoPortMap ports) : IGuestBus
    {
        public ulong MmioRead(ulong physical, int size) => EmptyBus.Instance.MmioRead(physical, size);
        public void MmioWrite(ulong physical, int size, ulong value) { }
        public uint PortIn(ushort port, int size) => ports.Read(port, size);
        public void PortOut(ushort port, int size, uint value) => ports.Write(port, size, value);
    }

    [Fact]
    public void Kernel_sees_the_magic_and_info_and_talks_to_the_devices()
    {
        // Prints 'M' if EAX holds the boot loader magic, then the first character of boot_loader_name and of the
        // command line, then the CPU count read from fw_cfg, and requests exit status (0x10 << 1) | 1.
        var a = new Assembler(32);
        var bad = a.CreateLabel();
        a.mov(esi, ebx);
        a.mov(dx, MachineInfo.SerialPort);
        a.cmp(eax, unchecked((int)0x2BADB002));
        a.jne(bad);
        a.mov(al, (byte)'M');
        a.@out(dx, al);
        a.Label(ref bad);
        a.mov(edi, __dword_ptr[esi + 64]);
        a.mov(al, __byte_ptr[edi]);
        a.@out(dx, al);
        a.mov(edi, __dword_ptr[esi + 16]);
        a.mov(al, __byte_ptr[edi]);
        a.@out(dx, al);
        a.mov(dx, MachineInfo.FwCfgSelectorPort);
        a.mov(ax, FwCfg.NbCpus);
        a.@out(dx, ax);
        a.inc(dx);
        a.@in(al, dx);
        a.add(al, (byte)'0');
        a.mov(dx, MachineInfo.SerialPort);
        a.@out(dx, al);
        a.mov(dx, MachineInfo.DebugExitPort);
        a.mov(al, 0x10);
        a.@out(dx, al);
        a.hlt();
        byte[] code = CodeBytes.Assemble(a, 0x10000C);
        Assert.True(code.Length <= MultibootElf.TextSize - 12, $"test kernel is {code.Length} bytes");

        const ulong ramSize = 4 << 20;
        var plan = MultibootLoader.Plan(new MultibootElf { TextCode = code }.Build(), ramSize, "xyz");
        using var ram = new GuestRam(ramSize);
        var boot = plan.Apply(ram);

        var ports = new IoPortMap();
        var uart = new Serial16550();
        var exit = new DebugExit();
        ports.Map(MachineInfo.SerialPort, Serial16550.PortCount, uart);
        ports.Map(MachineInfo.DebugExitPort, DebugExit.DefaultPortCount, exit);
        ports.Map(MachineInfo.FwCfgSelectorPort, FwCfg.PortCount, new FwCfg(cpuCount: 3, ramSize: ramSize));

        using var cpu = new CpuCore(ram, new PortBus(ports), new BlockCache(ram), JitOptions.InterpretOnly);
        cpu.SetFlat32(boot.Eip, 0);
        cpu.Gpr(0) = boot.Eax;
        cpu.Gpr(3) = boot.Ebx;
        Assert.Equal(ExitReason.Hlt, cpu.Run());
        Assert.Equal("MDx3", uart.Output);
        Assert.Equal(0x21, exit.ExitCode);
    }
    static string[] Lines(string s) => s.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Theory]
    [InlineData("console=ttyS0 dump=info x=1")]
    [InlineData("")]
    public void Kernel_linked_at_0x8000_reads_its_command_line_and_memory_map(string commandLine)
    {
        // The image (with its BSS stack) covers [0x8000, 0xA800), the old fixed info page included; the info goes in
        // the first page after it.
        const ulong mem = 32 << 20;
        using var pc = new Pc(new VmConfig { Vcpus = 1, MemoryBytes = mem });
        var plan = pc.LoadMultiboot(MultibootInfoDumper.Build(), commandLine);
        Assert.Equal(0xB000u, plan.InfoAddress);
        pc.Vm.Start();
        Assert.True(pc.Vm.WaitForExit(TimeSpan.FromSeconds(60)), "the kernel did not exit in 60 s");
        pc.Vm.Join();
        string output = pc.Devices.Serial.Output;
        Assert.True(pc.Vm.ExitKind == VmExitKind.DebugExit, $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage}\n{output}");
        Assert.True(pc.Vm.ExitStatus == 1, $"exit status {pc.Vm.ExitStatus}\n{output}"); // value 0: everything was there

        // What the loader defines: RAM below 640 KiB, the legacy VGA/BIOS hole reserved, RAM from 1 MiB to the end.
        Assert.Equal(new[]
        {
            "magic ok",
            $"mbi {plan.InfoAddress:x8}",
            $"cmdline [{commandLine}]",
            "mmap 0000000000000000 00000000000a0000 00000001",
            "mmap 00000000000a0000 0000000000060000 00000002",
            $"mmap 0000000000100000 {mem - 0x100000:x16} 00000001",
            "done",
        }, Lines(output));
    }
}
