using DynaSmp.Jit.Memory;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Machine;

/// <summary>
/// The shared device side of a PC as QEMU's `-machine pc` presents it to the guests we run: a 16550 UART at
/// 0x3F8, isa-debug-exit at 0xF4, fw_cfg at 0x510. Unmapped ports and MMIO float high and drop writes.
/// </summary>
public sealed class PcDevices : IGuestBus
{
    public IoPortMap Ports { get; } = new();
    public Serial16550 Serial { get; }
    public DebugExit DebugExit { get; } = new();
    public FwCfg FwCfg { get; }

    public PcDevices(int cpus, ulong ramBytes, Action<byte>? serialSink = null)
    {
        Serial = new Serial16550(MachineInfo.SerialPort, serialSink);
        FwCfg = new FwCfg(MachineInfo.FwCfgSelectorPort, cpus, ramBytes);
        Ports.Map(MachineInfo.SerialPort, Serial16550.PortCount, Serial);
        Ports.Map(MachineInfo.DebugExitPort, DebugExit.DefaultPortCount, DebugExit);
        Ports.Map(MachineInfo.FwCfgSelectorPort, FwCfg.PortCount, FwCfg);
    }

    public ulong MmioRead(ulong physical, int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
    public void MmioWrite(ulong physical, int size, ulong value) { }
    public uint PortIn(ushort port, int size) => Ports.Read(port, size);
    public void PortOut(ushort port, int size, uint value) => Ports.Write(port, size, value);
}
