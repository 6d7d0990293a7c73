using System.Text;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// A 16550A UART (COM1 at 0x3F8 by default) reduced to what a polling guest needs: the transmitter is always
/// ready (LSR.THRE and LSR.TEMT set), so output never waits; bytes written to THR go to the sink and to
/// <see cref="Output"/>. Interrupts are not generated yet (IIR always reads "no interrupt pending").
/// Reset values follow QEMU's serial_reset, so guests that probe the UART see the same thing under both.
/// </summary>
public sealed class Serial16550 : IPortDevice
{
    public const int PortCount = 8;

    // Register offsets (16550A data sheet).
    const int RbrThrDll = 0, IerDlm = 1, IirFcr = 2, Lcr = 3, Mcr = 4, Lsr = 5, Msr = 6, Scr = 7;

    const byte LcrDlab = 0x80;
    const byte LsrDataReady = 0x01, LsrThre = 0x20, LsrTemt = 0x40;
    const byte McrLoop = 0x10, McrOut2 = 0x08;
    const byte MsrCts = 0x10, MsrDsr = 0x20, MsrDcd = 0x80;
    const byte IirNoInterrupt = 0x01, IirFifoEnabled = 0xC0;
    const byte FcrEnable = 0x01;

    readonly Lock _sync = new();
    readonly Action<byte>? _sink;
    readonly List<byte> _output = new();
    readonly Queue<byte> _input = new();

    byte _ier, _lcr, _mcr, _scr, _dll, _dlm;
    bool _fifoEnabled;

    public Serial16550(ushort basePort = MachineInfo.SerialPort, Action<byte>? sink = null)
    {
        BasePort = basePort;
        _sink = sink;
        Reset();
    }

    /// <summary>Writes every transmitted byte to <paramref name="writer"/> as a Latin-1 character.</summary>
    public Serial16550(TextWriter writer, ushort basePort = MachineInfo.SerialPort)
        : this(basePort, b => { writer.Write((char)b); if (b == (byte)'\n') writer.Flush(); })
    {
    }

    public ushort BasePort { get; }

    public int MaxAccessSize => 1;

    /// <summary>Everything the guest transmitted, one Latin-1 character per byte.</summary>
    public string Output
    {
        get { lock (_sync) return Encoding.Latin1.GetString(_output.ToArray()); }
    }

    public byte[] OutputBytes
    {
        get { lock (_sync) return _output.ToArray(); }
    }

    /// <summary>The divisor latch (DLM:DLL); baud = 115200 / divisor.</summary>
    public ushort Divisor
    {
        get { lock (_sync) return (ushort)(_dll | _dlm << 8); }
    }

    public void ClearOutput()
    {
        lock (_sync) _output.Clear();
    }

    /// <summary>Queues bytes the guest will read from RBR (LSR.DR is set while any remain).</summary>
    public void EnqueueInput(ReadOnlySpan<byte> bytes)
    {
        lock (_sync) foreach (byte b in bytes) _input.Enqueue(b);
    }

    public void Reset()
    {
        lock (_sync)
        {
            _ier = 0; _lcr = 0; _scr = 0;
            _mcr = McrOut2;
            _dll = 0x0C; _dlm = 0; // 9600 baud, QEMU's reset divisor
            _fifoEnabled = false;
            _input.Clear();
        }
    }

    public uint PortRead(ushort port, int size)
    {
        lock (_sync)
        {
            switch ((port - BasePort) & 7)
            {
                case RbrThrDll:
                    if ((_lcr & LcrDlab) != 0) return _dll;
                    return _input.Count > 0 ? _input.Dequeue() : 0u;
                case IerDlm:
                    return (_lcr & LcrDlab) != 0 ? _dlm : _ier;
                case IirFcr:
                    return (uint)(IirNoInterrupt | (_fifoEnabled ? IirFifoEnabled : 0));
                case Lcr:
                    return _lcr;
                case Mcr:
                    return _mcr;
                case Lsr:
                    return (uint)(LsrThre | LsrTemt | (_input.Count > 0 ? LsrDataReady : 0));
                case Msr:
                    // Loopback wires RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD (16550A data sheet, MCR bit 4);
                    // otherwise report a connected modem, as QEMU does without a chardev that says otherwise.
                    return (_mcr & McrLoop) != 0 ? (uint)((_mcr & 0x0F) << 4) : (uint)(MsrDcd | MsrDsr | MsrCts);
                default:
                    return _scr;
            }
        }
    }

    public void PortWrite(ushort port, int size, uint value)
    {
        byte v = (byte)value;
        lock (_sync)
        {
            switch ((port - BasePort) & 7)
            {
                case RbrThrDll:
                    if ((_lcr & LcrDlab) != 0) { _dll = v; break; }
                    if ((_mcr & McrLoop) != 0) { _input.Enqueue(v); break; } // loopback: THR feeds RBR, nothing leaves
                    _output.Add(v);
                    _sink?.Invoke(v);
                    break;
                case IerDlm:
                    if ((_lcr & LcrDlab) != 0) _dlm = v;
                    else _ier = (byte)(v & 0x0F);
                    break;
                case IirFcr:
                    _fifoEnabled = (v & FcrEnable) != 0;
                    if ((v & 0x02) != 0) _input.Clear(); // FCR bit 1: clear receive FIFO
                    break;
                case Lcr:
                    _lcr = v;
                    break;
                case Mcr:
                    _mcr = (byte)(v & 0x1F);
                    break;
                case Lsr:
                case Msr:
                    break; // read-only status registers
                default:
                    _scr = v;
                    break;
            }
        }
    }
}
