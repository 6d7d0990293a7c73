using System.Buffers.Binary;
using System.Text;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Machine.Firmware;

/// <summary>
/// The ACPI tables a kernel reads on this PC (ACPI 6.x chapter 5), laid out as bytes for one guest-physical
/// address: RSDP (revision 2, so both RSDT and XSDT), FADT (revision 3: PM timer, PM1a blocks, reset register 0xCF9,
/// IAPC flags saying "no 8042"), FACS, a DSDT with \_S5 (so a guest poweroff reaches S5) and QEMU's HPET device, the
/// MADT (one LAPIC or x2APIC entry per vCPU, the IOAPIC, QEMU's interrupt source overrides and LINT1 as NMI), and the
/// HPET description table (IA-PC HPET 1.0a section 3.2.4), which is where Linux finds the HPET.
/// </summary>
public static class AcpiTables
{
    public const string OemId = "DYNSMP", OemTableId = "DYNASMP ";
    const int HeaderSize = 36;

    /// <summary>Builds the tables for <paramref name="cpus"/> vCPUs (APIC IDs 0..N-1) to live at <paramref name="baseAddress"/>;
    /// the RSDP is the first 36 bytes (16-byte aligned, where a BIOS-area scan finds it).</summary>
    public static byte[] Build(ulong baseAddress, int cpus)
    {
        if ((baseAddress & 15) != 0) throw new ArgumentException("the RSDP must be 16-byte aligned", nameof(baseAddress));
        var blob = new List<byte>();
        ulong Place(byte[] table)
        {
            while (blob.Count % 16 != 0) blob.Add(0);
            ulong at = baseAddress + (ulong)blob.Count;
            blob.AddRange(table);
            return at;
        }
        blob.AddRange(new byte[36]); // RSDP, filled last
        ulong facs = Place(Facs());
        ulong dsdt = Place(Dsdt());
        ulong fadt = Place(Fadt((uint)facs, (uint)dsdt));
        ulong madt = Place(Madt(cpus));
        ulong hpet = Place(HpetTable());
        ulong rsdt = Place(Rsdt([(uint)fadt, (uint)madt, (uint)hpet]));
        ulong xsdt = Place(Xsdt([fadt, madt, hpet]));
        var bytes = blob.ToArray();
        Rsdp((uint)rsdt, xsdt).CopyTo(bytes, 0);
        return bytes;
    }

    static byte[] Rsdp(uint rsdt, ulong xsdt)
    {
        var b = new byte[36];
        Encoding.ASCII.GetBytes("RSD PTR ", b);
        Encoding.ASCII.GetBytes(OemId, b.AsSpan(9));
        b[15] = 2; // revision 2 (ACPI 2.0+): XSDT present
        W32(b, 16, rsdt);
        W32(b, 20, 36);
        W64(b, 24, xsdt);
        b[8] = Checksum(b.AsSpan(0, 20));
        b[32] = Checksum(b);
        return b;
    }

    static byte[] Table(string signature, byte revision, int length)
    {
        var b = new byte[length];
        Encoding.ASCII.GetBytes(signature, b);
        W32(b, 4, (uint)length);
        b[8] = revision;
        Encoding.ASCII.GetBytes(OemId, b.AsSpan(10));
        Encoding.ASCII.GetBytes(OemTableId, b.AsSpan(16));
        W32(b, 24, 1);
        Encoding.ASCII.GetBytes("DSMP", b.AsSpan(28));
        W32(b, 32, 1);
        return b;
    }

    static byte[] Sealed(byte[] b)
    {
        b[9] = 0;
        b[9] = Checksum(b);
        return b;
    }

    static byte[] Rsdt(uint[] entries)
    {
        var b = Table("RSDT", 1, HeaderSize + 4 * entries.Length);
        for (int k = 0; k < entries.Length; k++) W32(b, HeaderSize + 4 * k, entries[k]);
        return Sealed(b);
    }

    static byte[] Xsdt(ulong[] entries)
    {
        var b = Table("XSDT", 1, HeaderSize + 8 * entries.Length);
        for (int k = 0; k < entries.Length; k++) W64(b, HeaderSize + 8 * k, entries[k]);
        return Sealed(b);
    }

    static byte[] Facs()
    {
        var b = new byte[64];
        Encoding.ASCII.GetBytes("FACS", b);
        W32(b, 4, 64);
        b[32] = 2; // version
        return b;
    }

    /// <summary>Name(\_S5, Package(4) {S5 SLP_TYP, S5 SLP_TYP, 0, 0}).</summary>
    public static readonly byte[] S5Aml =
    [
        0x08, (byte)'_', (byte)'S', (byte)'5', (byte)'_',  // NameOp "_S5_"
        0x12, 0x08, 0x04,                                   // PackageOp, PkgLength 8 (itself to the end), NumElements 4
        0x0A, AcpiPm.S5SleepType, 0x0A, AcpiPm.S5SleepType, // BytePrefix SLP_TYPa, BytePrefix SLP_TYPb
        0x00, 0x00,                                         // ZeroOp, ZeroOp
    ];

    /// <summary>QEMU's HPET device: Device(\_SB.HPET) { Name(_HID, EisaId("PNP0103")), Name(_UID, 0),
    /// Name(_CRS, ResourceTemplate() { Memory32Fixed(ReadOnly, 0xFED00000, 0x400) }) }. No _STA: always present.
    /// Linux's ACPI HPET driver sees the block the HPET table already gave and leaves it alone.</summary>
    public static readonly byte[] HpetDeviceAml =
    [
        0x5B, 0x82, 0x32,                                        // DeviceOp, PkgLength 50 (itself to the end)
        0x5C, 0x2E, (byte)'_', (byte)'S', (byte)'B', (byte)'_',  // \ DualNamePrefix _SB_
        (byte)'H', (byte)'P', (byte)'E', (byte)'T',              //   HPET
        0x08, (byte)'_', (byte)'H', (byte)'I', (byte)'D',        // Name(_HID,
        0x0C, 0x41, 0xD0, 0x01, 0x03,                            //   DWordConst EISA ID "PNP0103")
        0x08, (byte)'_', (byte)'U', (byte)'I', (byte)'D', 0x00,  // Name(_UID, Zero)
        0x08, (byte)'_', (byte)'C', (byte)'R', (byte)'S',        // Name(_CRS,
        0x11, 0x11, 0x0A, 0x0E,                                  //   BufferOp, PkgLength 17, BytePrefix size 14
        0x86, 0x09, 0x00, 0x00,                                  //   Memory32Fixed, length 9, read-only
        0x00, 0x00, 0xD0, 0xFE, 0x00, 0x04, 0x00, 0x00,          //   base 0xFED00000, length 0x400
        0x79, 0x00,                                              //   EndTag, checksum 0 (not checked))
    ];

    /// <summary>The DSDT's AML: <see cref="S5Aml"/> then <see cref="HpetDeviceAml"/>.</summary>
    public static readonly byte[] DsdtAml = [.. S5Aml, .. HpetDeviceAml];

    static byte[] Dsdt()
    {
        var b = Table("DSDT", 2, HeaderSize + DsdtAml.Length);
        DsdtAml.CopyTo(b, HeaderSize);
        return Sealed(b);
    }

    static byte[] Fadt(uint facs, uint dsdt)
    {
        var b = Table("FACP", 3, 244);
        W32(b, 36, facs);
        W32(b, 40, dsdt);
        W16(b, 46, IsaInterrupts.Sci);
        // SMI_CMD = 0: already in ACPI mode (SCI_EN reads 1), nothing to hand over.
        W32(b, 56, AcpiPm.Pm1aEvent);
        W32(b, 64, AcpiPm.Pm1aControl);
        W32(b, 76, AcpiPm.PmTimer);
        b[88] = 4; // PM1_EVT_LEN
        b[89] = 2; // PM1_CNT_LEN
        b[91] = 4; // PM_TMR_LEN
        W16(b, 96, 0x0FFF);  // P_LVL2_LAT > 100: no C2
        W16(b, 98, 0xFFFF);  // P_LVL3_LAT > 1000: no C3
        b[108] = CmosRtc.Century;
        W16(b, 109, 0x0001); // IAPC_BOOT_ARCH: LEGACY_DEVICES; no 8042
        // Flags: WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON as control methods (none exist), TMR_VAL_EXT (32-bit), RESET_REG_SUP.
        W32(b, 112, 1u << 0 | 1u << 2 | 1u << 4 | 1u << 5 | 1u << 8 | 1u << 10);
        // RESET_REG: system I/O, 8 bits, byte access, port 0xCF9; RESET_VALUE 0x06 (hard reset).
        b[116] = 1; b[117] = 8; b[118] = 0; b[119] = 1;
        W64(b, 120, PciHostBridge.ResetControlPort);
        b[128] = 0x06;
        W64(b, 140, dsdt); // X_DSDT
        return Sealed(b);
    }

    static byte[] Madt(int cpus)
    {
        var entries = new List<byte>();
        for (int id = 0; id < cpus; id++)
        {
            if (id < 255)
                entries.AddRange([0, 8, (byte)id, (byte)id, 1, 0, 0, 0]); // Processor Local APIC, enabled
            else
            {
                var x = new byte[16];
                x[0] = 9; x[1] = 16;
                W32(x, 4, (uint)id); W32(x, 8, 1); W32(x, 12, (uint)id); // Processor Local x2APIC, enabled
                entries.AddRange(x);
            }
        }
        var io = new byte[12];
        io[0] = 1; io[1] = 12; io[2] = 0; // I/O APIC id 0
        W32(io, 4, (uint)MachineInfo.IoApicBase);
        W32(io, 8, 0); // GSI base
        entries.AddRange(io);
        // QEMU's overrides: IRQ 0 -> GSI 2 (conforming), and the PCI interrupt lines 5, 9, 10, 11 active-high level.
        void Override(byte irq, uint gsi, ushort flags)
        {
            var o = new byte[10];
            o[0] = 2; o[1] = 10; o[2] = 0; o[3] = irq;
            W32(o, 4, gsi); W16(o, 8, flags);
            entries.AddRange(o);
        }
        Override(0, 2, 0);
        foreach (byte irq in new byte[] { 5, 9, 10, 11 }) Override(irq, irq, 0x000D);
        entries.AddRange([4, 6, 0xFF, 0, 0, 1]); // Local APIC NMI: all processors, LINT1
        var b = Table("APIC", 3, HeaderSize + 8 + entries.Count);
        W32(b, 36, (uint)MachineInfo.LapicDefaultBase);
        W32(b, 40, 1); // PCAT_COMPAT: 8259s present
        entries.CopyTo(b, HeaderSize + 8);
        return Sealed(b);
    }

    // IA-PC HPET 1.0a, table 3: the event timer block's ID (its capabilities register), its base as a generic address
    // (system memory), HPET number 0, no minimum periodic tick, no page protection; as QEMU writes it.
    static byte[] HpetTable()
    {
        var b = Table("HPET", 1, 56);
        W32(b, 36, Hpet.CapabilitiesId);
        b[40] = 0; // address space: system memory (bit width, offset and access size 0, as QEMU)
        W64(b, 44, Hpet.BaseAddress);
        return Sealed(b);
    }

    /// <summary>The byte that makes <paramref name="b"/> sum to zero (with its checksum byte counted as zero).</summary>
    public static byte Checksum(ReadOnlySpan<byte> b)
    {
        byte sum = 0;
        foreach (byte x in b) sum += x;
        return (byte)(-sum);
    }

    internal static void W16(byte[] b, int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), v);
    internal static void W32(byte[] b, int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), v);
    internal static void W64(byte[] b, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
}
