namespace DynaSmp.Machine.Devices;

/// <summary>
/// The small PC ports that reset the machine or absorb writes: port 0x92 (system control port A: bit 0 is a fast
/// reset, bit 1 the A20 gate, which is always on here), port 0x64 (the 8042's command port: 0xFE pulses the reset
/// line; there is no keyboard controller behind it, so status reads float high and Linux finds none), and port
/// 0x80 (the POST diagnostic port, written by I/O-delay loops).
/// </summary>
public sealed class SystemControl : IPortDevice
{
    public const ushort PortA = 0x92, KeyboardCommand = 0x64, PostCode = 0x80;

    byte _portA = 0x02;

    /// <summary>The last byte written to port 0x80.</summary>
    public byte LastPostCode { get; private set; }

    public Action? ResetRequested { get; set; }

    public int MaxAccessSize => 1;

    public void Map(IoPortMap ports)
    {
        ports.Map(PortA, 1, this);
        ports.Map(KeyboardCommand, 1, this);
        ports.Map(PostCode, 1, this);
    }

    public uint PortRead(ushort port, int size) => port switch
    {
        PortA => _portA,
        PostCode => LastPostCode,
        _ => 0xFF,
    };

    public void PortWrite(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        switch (port)
        {
            case PortA:
                bool reset = (v & 1) != 0 && (_portA & 1) == 0; // a 0 -> 1 transition of bit 0
                _portA = (byte)(v | 0x02);
                if (reset) ResetRequested?.Invoke();
                break;
            case KeyboardCommand:
                if (v == 0xFE) ResetRequested?.Invoke();
                break;
            case PostCode:
                LastPostCode = v;
                break;
        }
    }
}
