using DynaSmp.Jit.Cpu;
using DynaSmp.Machine;
using DynaSmp.Machine.Apic;
using static DynaSmp.Tests.Apic.ApicKit;

namespace DynaSmp.Tests.Apic;

/// <summary>Every ICR field (kvm-semantics.md §3 and §6, SDM Vol. 3A "Interrupt Command Register"), written by
/// vCPU 0 through xAPIC MMIO (ICR2 then ICR low) or the x2APIC MSRs, observed at every vCPU's LAPIC.</summary>
public unsafe class IcrFieldTests
{
    /// <summary>What a vCPU latched: I = IRR bit of the vector, T = TMR bit too, N = NMI queued,
    /// S = SIPI pending with the vector, X = INIT pending.</summary>
    public sealed record Row(string Name, uint Low, uint Dest, string Expect, string Setup = "")
    {
        public override string ToString() => Name;
    }

    static readonly Row[] XapicRows =
    [
        new("fixed physical edge", 0x0031, 2, "2I"),
        new("fixed physical, level bit ignored for edge", 0x4031, 2, "2I"),
        new("fixed level-triggered assert sets TMR", 0xC031, 2, "2IT"),
        new("fixed level-triggered de-assert dropped", 0x8031, 2, ""),
        new("fixed physical to an absent ID", 0x0031, 5, ""),
        new("fixed physical 0xFF broadcast includes the sender", 0x0031, 0xFF, "0I 1I 2I 3I"),
        new("lowest priority physical", 0x0131, 3, "3I"),
        new("lowest priority logical flat 1,2,3 vector 0x40 -> (64 mod 3)=1 -> vCPU 2", 0x0940, 0x0E, "2I", "flat"),
        new("lowest priority logical flat 1,2,3 vector 0x41 -> vCPU 3", 0x0941, 0x0E, "3I", "flat"),
        new("lowest priority logical flat 1,2,3 vector 0x42 -> vCPU 1", 0x0942, 0x0E, "1I", "flat"),
        new("lowest priority physical broadcast becomes fixed", 0x0131, 0xFF, "0I 1I 2I 3I"),
        new("SMI: nothing latched", 0x0200, 2, ""),
        new("remote read (reserved): nothing latched", 0x0300, 2, ""),
        new("NMI", 0x0400, 2, "2N"),
        new("NMI vector field ignored", 0x04AA, 2, "2N"),
        new("INIT edge", 0x0500, 2, "2X"),
        new("INIT level assert", 0xC500, 2, "2X"),
        new("INIT level de-assert ignored", 0x8500, 2, ""),
        new("INIT de-assert broadcast ignored", 0x8500, 0xFF, ""),
        new("SIPI", 0x06AB, 2, "2S"),
        new("SIPI level/trigger ignored", 0xC6AB, 2, "2S"),
        new("ExtINT ignored", 0x0731, 2, ""),
        new("logical flat MDA 0x06", 0x0831, 0x06, "1I 2I", "flat"),
        new("logical flat broadcast 0xFF", 0x0831, 0xFF, "0I 1I 2I 3I", "flat"),
        new("logical cluster 0x13 -> LDR 0x11, 0x12", 0x0831, 0x13, "0I 1I", "cluster"),
        new("logical cluster 0x21 -> LDR 0x21", 0x0831, 0x21, "3I", "cluster"),
        new("logical cluster 0x2E -> nobody", 0x0831, 0x2E, "", "cluster"),
        new("logical with LDR 0 -> nobody", 0x0831, 0x0F, ""),
        new("shorthand self ignores destination", 0x4_0031, 2, "0I"),
        new("shorthand all including self", 0x8_0031, 2, "0I 1I 2I 3I"),
        new("shorthand all excluding self", 0xC_0031, 2, "1I 2I 3I"),
        new("shorthand all excluding self, logical bit ignored", 0xC_0831, 0, "1I 2I 3I"),
        new("delivery-status bit written as 1 is ignored", 0x1031, 2, "2I"),
        new("software-disabled target drops fixed", 0x0031, 2, "", "swoff2"),
        new("software-disabled target still gets NMI", 0x0400, 2, "2N", "swoff2"),
        new("software-disabled target still gets INIT", 0xC500, 2, "2X", "swoff2"),
        new("software-disabled target still gets SIPI", 0x0612, 2, "2S", "swoff2"),
        new("hardware-disabled target gets nothing: fixed", 0x0031, 2, "", "hwoff2"),
        new("hardware-disabled target gets nothing: INIT", 0xC500, 2, "", "hwoff2"),
        new("hardware-disabled target gets nothing: SIPI", 0x0612, 2, "", "hwoff2"),
        new("hardware-disabled target gets nothing: NMI", 0x0400, 2, "", "hwoff2"),
        new("hardware-disabled target skipped by broadcast", 0x8_0031, 0, "0I 1I 3I", "hwoff2"),
        new("physical to a rewritten xAPIC ID (KVM: the xAPIC ID is writable)", 0x0031, 7, "2I", "id2to7"),
        new("physical to the old ID after the rewrite", 0x0031, 2, "", "id2to7"),
    ];

    public static TheoryData<Row> Xapic => new(XapicRows);

    static void Prepare(Vm vm, string setup)
    {
        for (int k = 0; k < vm.Vcpus.Length; k++)
        {
            var a = vm.Vcpus[k].Apic;
            SoftwareEnable(a);
            if (setup == "flat") a.WriteRegister(0xD0, 1u << (24 + k));
            if (setup == "cluster")
            {
                a.WriteRegister(0xE0, 0x0FFF_FFFF);
                a.WriteRegister(0xD0, (uint)new[] { 0x11, 0x12, 0x14, 0x21 }[k] << 24);
            }
        }
        var t = vm.Vcpus[2].Apic;
        if (setup == "swoff2") SoftwareEnable(t, false);
        if (setup == "hwoff2") t.WriteApicBase(0xFEE0_0000);
        if (setup == "id2to7") t.WriteRegister(0x20, 7u << 24);
    }

    static void Check(Vm vm, Row r)
    {
        var icr = new IcrWrite(r.Low, r.Dest);
        for (int k = 0; k < vm.Vcpus.Length; k++)
        {
            var v = vm.Vcpus[k];
            string mine = "";
            foreach (var tok in r.Expect.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                if (tok[0] - '0' == k) mine = tok[1..];
            string what = $"{r.Name}: vCPU {k}";
            bool fixedLike = icr.Mode is DeliveryMode.Fixed or DeliveryMode.LowestPriority;
            Assert.True(mine.Contains('I') == (fixedLike && IrrBit(v.Apic, icr.Vector)), $"{what} IRR");
            Assert.True(mine.Contains('T') == (fixedLike && TmrBit(v.Apic, icr.Vector)), $"{what} TMR");
            Assert.True(mine.Contains('I') == (IrrCount(v.Apic) == 1), $"{what} IRR holds exactly the expected bits");
            Assert.True(mine.Contains('N') == (v.Core.State->NmiPending != 0), $"{what} NMI");
            Assert.True(mine.Contains('X') == ((v.Apic.Pending.Bits & PendingEvents.Init) != 0), $"{what} INIT");
            Assert.True(mine.Contains('S') == ((v.Apic.Pending.Bits & PendingEvents.Sipi) != 0), $"{what} SIPI");
            if (mine.Contains('S')) Assert.Equal(icr.Vector, v.Apic.Pending.StoredVector);
        }
    }

    [Theory]
    [MemberData(nameof(Xapic))]
    public void Xapic_mmio_icr(Row r)
    {
        using var vm = NewVm();
        Prepare(vm, r.Setup);
        var a = vm.Vcpus[0].Apic;
        a.MmioWrite(0x310, 4, r.Dest << 24);
        a.MmioWrite(0x300, 4, r.Low);
        Check(vm, r);
        // Delivery status always reads 0; the rest of the written value reads back; ESR stays 0.
        Assert.Equal(r.Low & ~0x1000u, a.ReadRegister(0x300));
        Assert.Equal(r.Dest << 24, a.ReadRegister(0x310));
        Assert.Equal(0u, a.ReadRegister(0x280));
    }

    [Fact]
    public void Xapic_icr2_keeps_bits_31_24_and_odd_mmio_writes_send_nothing()
    {
        using var vm = NewVm();
        Prepare(vm, "");
        var a = vm.Vcpus[0].Apic;
        a.MmioWrite(0x310, 4, 0x0212_3456);
        Assert.Equal(0x0200_0000u, a.ReadRegister(0x310));
        a.MmioWrite(0x300, 2, 0x31);     // not 4 bytes: ignored
        a.MmioWrite(0x304, 4, 0x31);     // not 16-byte aligned: ignored
        a.MmioWrite(0x301, 1, 0x31);
        for (int k = 0; k < 4; k++) Assert.Equal(0, IrrCount(vm.Vcpus[k].Apic));
        Assert.Equal(0u, a.ReadRegister(0x300));
        a.MmioWrite(0x300, 4, 0x31);
        Assert.True(IrrBit(vm.Vcpus[2].Apic, 0x31));
    }

    // ---- x2APIC ----

    static Vm X2Vm(string setup = "")
    {
        var vm = NewVm(x2apic: true);
        for (int k = 0; k < vm.Vcpus.Length; k++)
        {
            var v = vm.Vcpus[k];
            Assert.True(v.Core.MsrWriteHook!(0x1B, (k == 0 ? 0xFEE0_0D00UL : 0xFEE0_0C00UL)));
            Assert.True(v.Apic.X2ApicMode);
            SoftwareEnable(v.Apic, setup != "swoff" || k != 2);
        }
        return vm;
    }

    static readonly Row[] X2Rows =
    [
        new("x2 fixed physical 32-bit destination", 0x0031, 2, "2I"),
        new("x2 physical 0x102 is not ID 2", 0x0031, 0x102, ""),
        new("x2 physical 0xFF is not a broadcast", 0x0031, 0xFF, ""),
        new("x2 physical 0xFFFFFFFF broadcast includes the sender", 0x0031, 0xFFFF_FFFF, "0I 1I 2I 3I"),
        new("x2 logical cluster 0 bits 1,2", 0x0831, 0x0000_0006, "1I 2I"),
        new("x2 logical cluster 1 bits 1,2 -> nobody", 0x0831, 0x0001_0006, ""),
        new("x2 logical broadcast", 0x0831, 0xFFFF_FFFF, "0I 1I 2I 3I"),
        new("x2 lowest priority physical", 0x0131, 3, "3I"),
        new("x2 level-triggered fixed sets TMR", 0xC031, 1, "1IT"),
        new("x2 NMI", 0x0400, 3, "3N"),
        new("x2 INIT", 0xC500, 1, "1X"),
        new("x2 INIT de-assert ignored", 0x8500, 1, ""),
        new("x2 SIPI", 0x069A, 1, "1S"),
        new("x2 shorthand self", 0x4_0031, 3, "0I"),
        new("x2 shorthand all including self", 0x8_0031, 3, "0I 1I 2I 3I"),
        new("x2 shorthand all excluding self", 0xC_0031, 3, "1I 2I 3I"),
        new("x2 busy bit ignored", 0x1031, 2, "2I"),
        new("x2 software-disabled target drops fixed", 0x0031, 2, "", "swoff"),
    ];

    public static TheoryData<Row> X2 => new(X2Rows);

    [Theory]
    [MemberData(nameof(X2))]
    public void X2apic_msr_icr(Row r)
    {
        using var vm = X2Vm(r.Setup);
        var cpu0 = vm.Vcpus[0];
        ulong value = ((ulong)r.Dest << 32) | r.Low;
        Assert.True(cpu0.Core.MsrWriteHook!(0x830, value));
        Check(vm, r);
        Assert.Equal(value & ~0x1000UL, cpu0.Core.MsrReadHook!(0x830));
        Assert.Equal(0UL, cpu0.Core.MsrReadHook!(0x828)); // ESR
    }

    public static TheoryData<int> ReservedBits => new([13, 16, 17, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);

    [Theory]
    [MemberData(nameof(ReservedBits))]
    public void X2apic_icr_reserved_bit_gp_sends_nothing(int bit)
    {
        using var vm = X2Vm();
        var cpu0 = vm.Vcpus[0];
        var f = Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x830, (2UL << 32) | 0x0031 | (1UL << bit)));
        Assert.Equal(Vector.GP, f.Vector);
        for (int k = 0; k < 4; k++) Assert.Equal(0, IrrCount(vm.Vcpus[k].Apic));
        // Same with INIT: no pending bit.
        Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x830, (2UL << 32) | 0xC500 | (1UL << bit)));
        Assert.Equal(0, vm.Vcpus[2].Apic.Pending.Bits);
        Assert.Equal(0UL, cpu0.Core.MsrReadHook!(0x830)); // the faulting write was not stored
    }

    [Fact]
    public void X2apic_self_ipi_msr_and_absent_registers()
    {
        using var vm = X2Vm();
        var cpu0 = vm.Vcpus[0];
        Assert.True(cpu0.Core.MsrWriteHook!(0x83F, 0x55));
        Assert.True(IrrBit(cpu0.Apic, 0x55));
        Assert.False(TmrBit(cpu0.Apic, 0x55)); // edge
        for (int k = 1; k < 4; k++) Assert.Equal(0, IrrCount(vm.Vcpus[k].Apic));
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x83F, 0x155)).Vector);
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x83F, 1UL << 32 | 0x56)).Vector);
        Assert.False(IrrBit(cpu0.Apic, 0x56));
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x831, 0)).Vector); // no ICR2
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrReadHook!(0x831)).Vector);
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrReadHook!(0x83F)).Vector); // write-only
        // MMIO is off in x2APIC mode: an ICR write through the page sends nothing.
        cpu0.Apic.MmioWrite(0x310, 4, 2u << 24);
        cpu0.Apic.MmioWrite(0x300, 4, 0x31);
        Assert.False(IrrBit(vm.Vcpus[2].Apic, 0x31));
        // The x2APIC LDR is derived from the ID: (ID >> 4) << 16 | 1 << (ID & 0xF).
        Assert.Equal(1UL << 3, vm.Vcpus[3].Core.MsrReadHook!(0x80D));
    }

    [Fact]
    public void X2apic_msrs_gp_in_xapic_mode()
    {
        using var vm = NewVm(x2apic: true);
        var cpu0 = vm.Vcpus[0];
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x830, (2UL << 32) | 0x31)).Vector);
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrWriteHook!(0x83F, 0x31)).Vector);
        Assert.Equal(Vector.GP, Assert.Throws<CpuFault>(() => cpu0.Core.MsrReadHook!(0x802)).Vector);
    }
}
