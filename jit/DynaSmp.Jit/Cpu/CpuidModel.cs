using System.Text;

namespace DynaSmp.Jit.Cpu;

/// <summary>
/// What CPUID reports. It tells the truth: only features the core implements are set. The machine
/// supplies the topology (initial APIC ID, logical processor count) and whether x2APIC is offered.
/// </summary>
public sealed unsafe class CpuidModel
{
    public uint ApicId { get; set; }
    public uint LogicalProcessors { get; set; } = 1;
    public bool X2Apic { get; set; }
    public bool Apic { get; set; }

    const uint MaxBasicLeaf = 0xB, MaxExtendedLeaf = 0x8000_0008;
    // Family 6, model 0x3A-like signature; only the signature format matters to guests.
    public const uint Signature = 0x0003_06A9;

    // Leaf 1 EDX: TSC(4) MSR(5) CX8(8) CMOV(15) SSE(25) SSE2(26); APIC(9) added when the machine has one.
    const uint Leaf1Edx = (1u << 4) | (1u << 5) | (1u << 8) | (1u << 15) | (1u << 25) | (1u << 26);
    // Leaf 1 ECX: CX16(13) POPCNT(23); x2APIC(21) when enabled.
    const uint Leaf1Ecx = (1u << 13) | (1u << 23);
    // Leaf 0x80000001 EDX: SYSCALL(11) NX(20) LM(29); ECX: LAHF/SAHF in 64-bit mode(0) LZCNT(5).
    const uint Ext1Edx = (1u << 29);
    const uint Ext1Ecx = (1u << 0) | (1u << 5);
    // Leaf 7 EBX: BMI1(3) (TZCNT, ANDN, BEXTR, BLSI, BLSMSK, BLSR).
    const uint Leaf7Ebx = 1u << 3;

    static readonly uint[] Vendor = VendorWords("GenuineIntel");

    static uint[] VendorWords(string v)
    {
        var b = Encoding.ASCII.GetBytes(v);
        return [BitConverter.ToUInt32(b, 0), BitConverter.ToUInt32(b, 4), BitConverter.ToUInt32(b, 8)];
    }

    public void Execute(CpuState* s)
    {
        uint leaf = (uint)s->Gpr[0], sub = (uint)s->Gpr[1];
        Query(leaf, sub, out uint a, out uint b, out uint c, out uint d);
        s->Gpr[0] = a; s->Gpr[3] = b; s->Gpr[1] = c; s->Gpr[2] = d;
    }

    public void Query(uint leaf, uint sub, out uint a, out uint b, out uint c, out uint d)
    {
        a = b = c = d = 0;
        if (leaf >= 0x8000_0000 ? leaf > MaxExtendedLeaf : leaf > MaxBasicLeaf)
            leaf = MaxBasicLeaf; // Intel: out-of-range leaves return the highest basic leaf
        switch (leaf)
        {
            case 0: a = MaxBasicLeaf; b = Vendor[0]; d = Vendor[1]; c = Vendor[2]; break;
            case 1:
                a = Signature;
                b = (ApicId << 24) | (Math.Min(LogicalProcessors, 255u) << 16) | (8u << 8); // CLFLUSH line = 8 qwords
                c = Leaf1Ecx | (X2Apic ? 1u << 21 : 0);
                d = Leaf1Edx | (Apic ? 1u << 9 : 0) | (LogicalProcessors > 1 ? 1u << 28 : 0);
                break;
            case 7: if (sub == 0) b = Leaf7Ebx; break;
            case 0xB:
                // Topology: level 0 = SMT (one thread per core), level 1 = core (all processors in one package).
                if (sub == 0) { a = 0; b = 1; c = 0x100; }
                else if (sub == 1) { a = (uint)Math.Max(1, 32 - int.LeadingZeroCount((int)Math.Max(LogicalProcessors - 1, 1))); b = LogicalProcessors; c = 0x201; }
                else c = sub;
                d = ApicId;
                break;
            case 0x8000_0000: a = MaxExtendedLeaf; break;
            case 0x8000_0001: c = Ext1Ecx; d = Ext1Edx; break;
            case 0x8000_0008: a = 0x3028; break; // 40-bit physical, 48-bit linear addresses
        }
    }
}
