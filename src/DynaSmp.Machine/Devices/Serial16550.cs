using System.Text;

namespace DynaSmp.Machine.Devices;

/// <summary>
/// A 16550A UART (COM1 at 0x3F8 by default). The transmitter is always ready (LSR.THRE and LSR.TEMT set), so output
/// never waits; bytes written to THR go to the sink and to <see cref="Output"/>. Interrupts follow the data sheet's
/// IIR priorities (line status, received data, THR empty, modem status never changes here) as QEMU's serial_update_irq raises them:
/// the THRE interrupt is armed when THR empties or IER.ETBEI is set with THR empty, and cleared by an IIR read that
/// reports it or a THR write. <see cref="EnqueueInput"/> is the receive path (the host's stdin in `dynasmp run`).
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
    const byte IirNoInterrupt = 0x01, IirFifoEnabled = 0xC0, IirThre = 0x02, IirRda = 0x04;
    const byte IerRda = 0x01, IerThre = 0x02;
    const byte FcrEnable = 0x01;

    readonly Lock _sync = new();
    readonly Action<byte>? _sink;
    readonly List<byte> _output = new();
    readonly Queue<byte> _input = new();

    byte _ier, _lcr, _mcr, _scr, _dll, _dlm;
    bool _fifoEnabled, _thrInterrupt, _irqLevel;

    public Serial16550(ushort basePort = MachineInfo.SerialPort, Action<byte>? sink = null)
    {
        BasePort = basePort;
        _sink = sink;
        Reset();
    }

    /// <summary>The UART's interrupt output (IRQ 4 for COM1), driven with the IIR's "pending" state.
    /// Called with the UART's lock held: the receiver must not call back into the UART.</summary>
    public Action<bool>? Irq { get; set; }

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
        lock (_sync)
        {
            foreach (byte b in bytes) _input.Enqueue(b);
            UpdateIrq();
        }
    }

    // The IIR value by priority (16550A data sheet table 4; no line-status errors or character timeouts happen here).
    byte InterruptId()
    {
        if ((_ier & IerRda) != 0 && _input.Count > 0) return IirRda;
        if ((_ier & IerThre) != 0 && _thrInterrupt) return IirThre;
        return IirNoInterrupt;
    }

    void UpdateIrq()
    {
        bool level = InterruptId() != IirNoInterrupt;
        if (level == _irqLevel) return;
        _irqLevel = level;
        Irq?.Invoke(level);
    }

    byte ModemStatusLines() => (_mcr & McrLoop) != 0
        // Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (16550A data sheet, MCR bit 4).
        ? (byte)((_mcr & 1) << 5 | (_mcr & 2) << 3 | (_mcr & 4) << 4 | (_mcr & 8) << 4)
        // Otherwise a connected modem, as QEMU reports without a chardev that says otherwise.
        : (byte)(MsrDcd | MsrDsr | MsrCts);

    public void Reset()
    {
        lock (_sync)
        {
            _ier = 0; _lcr = 0; _scr = 0;
            _mcr = McrOut2;
            _dll = 0x0C; _dlm = 0; // 9600 baud, QEMU's reset divisor
            _fifoEnabled = false;
            _thrInterrupt = false;
            _input.Clear();
            UpdateIrq();
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
                    if (_input.Count == 0) return 0u;
                    byte rx = _input.Dequeue();
                    UpdateIrq();
                    return rx;
                case IerDlm:
                    return (_lcr & LcrDlab) != 0 ? _dlm : _ier;
                case IirFcr:
                {
                    byte id = InterruptId();
                    if (id == IirThre) { _thrInterrupt = false; UpdateIrq(); } // reading IIR acknowledges THRE
                    return (uint)(id | (_fifoEnabled ? IirFifoEnabled : 0));
                }
                case Lcr:
                    return _lcr;
                case Mcr:
                    return _mcr;
                case Lsr:
                    return (uint)(LsrThre | LsrTemt | (_input.Count > 0 ? LsrDataReady : 0));
                case Msr:
                    // The modem lines never change (and loopback reports no deltas, as QEMU): no delta bits, no MSR interrupt.
                    return ModemStatusLines();
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
                    _thrInterrupt = false;
                    UpdateIrq();
                    if ((_mcr & McrLoop) != 0) _input.Enqueue(v); // loopback: THR feeds RBR, nothing leaves
                    else { _output.Add(v); _sink?.Invoke(v); }
                    _thrInterrupt = true; // sent at once: THR is empty again (a new THRE edge)
                    UpdateIrq();
                    break;
                case IerDlm:
                    if ((_lcr & LcrDlab) != 0) _dlm = v;
                    else
                    {
                        // Enabling ETBEI while THR is empty raises THRE at once (QEMU; what Linux's THRE test expects).
                        if ((v & IerThre) != 0 && (_ier & IerThre) == 0) _thrInterrupt = true;
                        _ier = (byte)(v & 0x0F);
                        UpdateIrq();
                    }
                    break;
                case IirFcr:
                    _fifoEnabled = (v & FcrEnable) != 0;
                    if ((v & 0x02) != 0) _input.Clear(); // FCR bit 1: clear receive FIFO
                    UpdateIrq();
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
