using System.Text;
using DynaSmp.Jit.Cpu;
using DynaSmp.Machine.Apic;
using DynaSmp.Machine.Devices;

namespace DynaSmp.Machine.Firmware;

/// <summary>
/// The Intel MultiProcessor Specification 1.4 tables, for kernels that look for them instead of ACPI (or with
/// acpi=off): the MP floating pointer (found by a scan of 0xF0000-0xFFFFF) followed by the configuration table with
/// one processor entry per vCPU (APIC IDs below 255), the ISA bus, the IOAPIC, the ISA interrupt assignments wired as
/// <see cref="IsaInterrupts"/> wires them, and ExtINT on LINT0 / NMI on LINT1.
/// </summary>
public static class MpTable
{
    public static byte[] Build(ulong baseAddress, int cpus)
    {
        if ((baseAddress & 15) != 0 || baseAddress + 0x10000 > 1UL << 20) throw new ArgumentException("the MP floating pointer must be 16-byte aligned below 1 MiB", nameof(baseAddress));
        var entries = new List<byte>();
        int count = 0;
        void Add(byte[] e) { entries.AddRange(e); count++; }
        for (int id = 0; id < Math.Min(cpus, 255); id++)
        {
            var p = new byte[20];
            p[0] = 0; p[1] = (byte)id; p[2] = (byte)(Lapic.Version & 0xFF);
            p[3] = (byte)(1 | (id == 0 ? 2 : 0)); // enabled, bootstrap processor
            AcpiTables.W32(p, 4, CpuidModel.Signature);
            AcpiTables.W32(p, 8, 1u << 0 | 1u << 9); // FPU, APIC
            Add(p);
        }
        Add([1, 0, (byte)'I', (byte)'S', (byte)'A', (byte)' ', (byte)' ', (byte)' ']);
        var io = new byte[8];
        io[0] = 2; io[1] = 0; io[2] = 0x20; io[3] = 1;
        AcpiTables.W32(io, 4, (uint)MachineInfo.IoApicBase);
        Add(io);
        for (byte irq = 0; irq < 16; irq++)
        {
            if (irq == 2) continue; // the cascade: no ISA device behind it; pin 2 carries IRQ 0
            Add([3, 0, 0, 0, 0, irq, 0, (byte)IsaInterrupts.GsiOf(irq)]);
        }
        Add([4, 3, 0, 0, 0, 0, 0xFF, 0]); // ExtINT -> LINT0 of every LAPIC
        Add([4, 1, 0, 0, 0, 0, 0xFF, 1]); // NMI -> LINT1

        var config = new byte[44 + entries.Count];
        Encoding.ASCII.GetBytes("PCMP", config);
        AcpiTables.W16(config, 4, (ushort)config.Length);
        config[6] = 4;
        Encoding.ASCII.GetBytes("DYNASMP ", config.AsSpan(8));
        Encoding.ASCII.GetBytes("PC          ", config.AsSpan(16));
        AcpiTables.W16(config, 34, (ushort)count);
        AcpiTables.W32(config, 36, (uint)MachineInfo.LapicDefaultBase);
        entries.CopyTo(config, 44);
        config[7] = AcpiTables.Checksum(config);

        var floating = new byte[16];
        Encoding.ASCII.GetBytes("_MP_", floating);
        AcpiTables.W32(floating, 4, (uint)baseAddress + 16);
        floating[8] = 1;  // length in 16-byte paragraphs
        floating[9] = 4;  // spec revision 1.4
        floating[10] = AcpiTables.Checksum(floating);
        return [.. floating, .. config];
    }
}
