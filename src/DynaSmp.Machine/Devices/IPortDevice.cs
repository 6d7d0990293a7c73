namespace DynaSmp.Machine.Devices;

/// <summary>
/// A device on the x86 I/O port bus. <see cref="IoPortMap"/> hands it every access whose first port it maps;
/// <paramref name="port"/> is the absolute port number and <paramref name="size"/> is 1, 2 or 4 bytes.
/// </summary>
public interface IPortDevice
{
    /// <summary>Widest access the device decodes itself; wider accesses are split into byte accesses by the map
    /// (as an 8-bit ISA device sees a 16-bit IN as two cycles).</summary>
    int MaxAccessSize { get; }

    uint PortRead(ushort port, int size);

    void PortWrite(ushort port, int size, uint value);
}
