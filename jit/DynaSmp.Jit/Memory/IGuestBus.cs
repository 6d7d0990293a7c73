namespace DynaSmp.Jit.Memory;

/// <summary>
/// The only way the CPU reaches anything that is not RAM: memory-mapped I/O and I/O ports. The machine
/// implements it (devices, APIC page); the CPU core knows nothing about what sits behind an address.
/// </summary>
public interface IGuestBus
{
    ulong MmioRead(ulong physical, int size);
    void MmioWrite(ulong physical, int size, ulong value);
    uint PortIn(ushort port, int size);
    void PortOut(ushort port, int size, uint value);
}

/// <summary>A bus with nothing on it: reads float high (all ones), writes are dropped, as on a PC.</summary>
public sealed class EmptyBus : IGuestBus
{
    public static readonly EmptyBus Instance = new();
    public ulong MmioRead(ulong physical, int size) => size == 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;
    public void MmioWrite(ulong physical, int size, ulong value) { }
    public uint PortIn(ushort port, int size) => size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
    public void PortOut(ushort port, int size, uint value) { }
}
