using System.Buffers.Binary;
using System.Text;
using DynaSmp.Machine;
using DynaSmp.Machine.Devices;
using DynaSmp.Machine.Firmware;

namespace DynaSmp.Tests.Firmware;

/// <summary>The firmware tables parsed back as a kernel parses them (ACPI 6.x chapter 5, MP spec 1.4): signatures,
/// lengths, checksums, the pointer chain RSDP -> XSDT/RSDT -> FADT -> DSDT/FACS, and the MADT's entries.</summary>
public class AcpiTablesTests
{
    const ulong Base = 0xE0000;

    static ReadOnlySpan<byte> At(byte[] blob, ulong address, int length) => blob.AsSpan((int)(address - Base), length);
    static uint U32(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ulong U64(ReadOnlySpan<byte> b, int at) => BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);
    static string Sig(ReadOnlySpan<byte> b) => Encoding.ASCII.GetString(b[..4]);
    static int Sum(ReadOnlySpan<byte> b) { int s = 0; foreach (byte x in b) s += x; return s & 0xFF; }

    static ReadOnlySpan<byte> Table(byte[] blob, ulong address, string signature)
    {
        var header = At(blob, address, 36);
        Assert.Equal(signature, Sig(header));
        var t = At(blob, address, (int)U32(header, 4));
        Assert.Equal(0, Sum(t));
        return t;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(300)]
    public void Tables_chain_from_the_rsdp_with_valid_checksums(int cpus)
    {
        var blob = AcpiTables.Build(Base, cpus);
        var rsdp = At(blob, Base, 36);
        Assert.Equal("RSD PTR ", Encoding.ASCII.GetString(rsdp[..8]));
        Assert.Equal(0, Sum(rsdp[..20]));
        Assert.Equal(0, Sum(rsdp));
        Assert.Equal(2, rsdp[15]);

        var xsdt = Table(blob, U64(rsdp, 24), "XSDT");
        var rsdt = Table(blob, U32(rsdp, 16), "RSDT");
        Assert.Equal((xsdt.Length - 36) / 8, (rsdt.Length - 36) / 4);
        var signatures = new List<string>();
        for (int k = 36; k < xsdt.Length; k += 8)
        {
            ulong at = U64(xsdt, k);
            Assert.Equal(at, U32(rsdt, 36 + (k - 36) / 2));
            signatures.Add(Sig(At(blob, at, 4)));
        }
        Assert.Equal(["FACP", "APIC", "HPET"], signatures);

        var fadt = Table(blob, U64(xsdt, 36), "FACP");
        Assert.Equal(AcpiPm.PmTimer, U32(fadt, 76));
        Assert.Equal(AcpiPm.Pm1aControl, U32(fadt, 64));
        Assert.Equal(IsaInterrupts.Sci, BinaryPrimitives.ReadUInt16LittleEndian(fadt[46..]));
        Assert.NotEqual(0u, U32(fadt, 112) & 1u << 10);  // RESET_REG_SUP
        Assert.Equal(0xCF9UL, U64(fadt, 120));
        Assert.Equal(0x06, fadt[128]);
        Assert.Equal("FACS", Sig(At(blob, U32(fadt, 36), 4)));
        var dsdt = Table(blob, U32(fadt, 40), "DSDT");
        Assert.Equal(U32(fadt, 40), U64(fadt, 140));
        Assert.Equal(AcpiTables.DsdtAml, dsdt[36..].ToArray());

        var madt = Table(blob, U64(xsdt, 44), "APIC");
        Assert.Equal((uint)MachineInfo.LapicDefaultBase, U32(madt, 36));
        var lapicIds = new List<uint>();
        int overrides = 0, ioapics = 0;
        for (int at = 44; at < madt.Length; at += madt[at + 1])
        {
            Assert.True(madt[at + 1] >= 2, "MADT entries have a length");
            switch (madt[at])
            {
                case 0: lapicIds.Add(madt[at + 3]); Assert.Equal(1u, U32(madt, at + 4) & 1); break;
                case 9: lapicIds.Add(U32(madt, at + 4)); break;
                case 1: ioapics++; Assert.Equal((uint)MachineInfo.IoApicBase, U32(madt, at + 4)); break;
                case 2:
                    overrides++;
                    if (madt[at + 3] == 0) Assert.Equal(2u, U32(madt, at + 4)); // IRQ 0 -> GSI 2
                    break;
            }
        }
        Assert.Equal(Enumerable.Range(0, cpus).Select(i => (uint)i), lapicIds);
        Assert.Equal(1, ioapics);
        Assert.Equal(5, overrides);

        var hpet = Table(blob, U64(xsdt, 52), "HPET");
        Assert.Equal(56, hpet.Length);
        Assert.Equal(0x8086A201u, U32(hpet, 36)); // QEMU's event timer block ID: 3 timers, 64-bit, legacy route capable
        Assert.Equal(0, hpet[40]);                // system memory
        Assert.Equal(Hpet.BaseAddress, U64(hpet, 44));
    }

    [Fact]
    public void Dsdt_hpet_device_is_pnp0103_with_the_hpet_block_as_its_resource()
    {
        var aml = AcpiTables.HpetDeviceAml;
        Assert.Equal(new byte[] { 0x5B, 0x82 }, aml[..2]);
        Assert.Equal(aml.Length - 2, aml[2]);      // PkgLength covers itself to the end
        Assert.Equal(new byte[] { 0x5C, 0x2E }, aml[3..5]); // root, dual name
        Assert.Equal("_SB_HPET", Encoding.ASCII.GetString(aml, 5, 8));
        int hid = Encoding.ASCII.GetString(aml).IndexOf("_HID", StringComparison.Ordinal);
        Assert.Equal(new byte[] { 0x0C, 0x41, 0xD0, 0x01, 0x03 }, aml[(hid + 4)..(hid + 9)]); // EisaId("PNP0103")
        int crs = Encoding.ASCII.GetString(aml).IndexOf("_CRS", StringComparison.Ordinal);
        Assert.Equal(0x11, aml[crs + 4]);         // BufferOp
        Assert.Equal(aml.Length - (crs + 5), aml[crs + 5]);
        var descriptor = aml.AsSpan(crs + 8);
        Assert.Equal(0x86, descriptor[0]);        // Memory32Fixed
        Assert.Equal((uint)Hpet.BaseAddress, U32(descriptor, 4));
        Assert.Equal((uint)Hpet.Size, U32(descriptor, 8));
        Assert.Equal(new byte[] { 0x79, 0x00 }, descriptor[12..14].ToArray());
        Assert.Equal(AcpiTables.S5Aml.Concat(AcpiTables.HpetDeviceAml), AcpiTables.DsdtAml);
    }

    [Fact]
    public void Dsdt_s5_package_names_the_sleep_type_the_pm_block_powers_off_with()
    {
        var aml = AcpiTables.S5Aml;
        Assert.Equal(0x08, aml[0]);
        Assert.Equal("_S5_", Encoding.ASCII.GetString(aml, 1, 4));
        Assert.Equal(0x12, aml[5]);
        Assert.Equal(aml.Length - 6, aml[6]); // PkgLength covers itself to the end
        Assert.Equal(4, aml[7]);
        Assert.Equal(AcpiPm.S5SleepType, aml[9]);
    }

    [Fact]
    public void Mp_table_has_a_valid_floating_pointer_and_one_processor_per_cpu()
    {
        var blob = MpTable.Build(0xF0000, 3);
        Assert.Equal("_MP_", Sig(blob));
        Assert.Equal(0, Sum(blob.AsSpan(0, 16)));
        Assert.Equal(0xF0010u, U32(blob, 4));
        var config = blob.AsSpan(16);
        Assert.Equal("PCMP", Sig(config));
        int length = BinaryPrimitives.ReadUInt16LittleEndian(config[4..]);
        Assert.Equal(0, Sum(config[..length]));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(config[34..]);
        int processors = 0, at = 44, bsp = 0;
        for (int k = 0; k < count; k++)
        {
            byte type = config[at];
            if (type == 0) { processors++; if ((config[at + 3] & 2) != 0) bsp++; }
            at += type == 0 ? 20 : 8;
        }
        Assert.Equal(length, at);
        Assert.Equal(3, processors);
        Assert.Equal(1, bsp);
    }

    [Fact]
    public void E820_map_has_low_ram_the_bios_hole_and_high_ram()
    {
        var map = PcMemoryMap.Build(256UL << 20);
        Assert.Equal([new E820Entry(0, 0xA0000, E820Type.Ram), new E820Entry(0xA0000, 0x60000, E820Type.Reserved),
            new E820Entry(0x100000, (256UL << 20) - 0x100000, E820Type.Ram)], map);
    }
}
