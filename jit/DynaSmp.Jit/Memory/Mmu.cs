using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Memory;

/// <summary>Linear-to-physical translation and software-TLB fills for one vCPU.</summary>
public sealed unsafe class Mmu(CpuCore core)
{
    /// <summary>Physical address for a linear one, or a guest fault.</summary>
    public ulong Translate(ulong lin, MemAccess access)
    {
        CpuState* s = core.State;
        if ((s->Cr0 & Cr0.PG) != 0)
            throw new UnsupportedGuestFeatureException("paging (CR0.PG) is not modelled yet");
        // Without paging the linear address is physical; outside 64-bit code it is 32 bits wide.
        return (s->Mode & ExecMode.SizeMask) == ExecMode.Code64 ? lin : lin & 0xFFFF_FFFF;
    }

    public void FillTlb(ulong lin, ulong phys, bool write)
    {
        CpuState* s = core.State;
        ulong page = lin & ~GuestRam.PageMask;
        ulong* e = (write ? s->TlbWrite : s->TlbRead) + (((lin >> 12) & (CpuState.TlbEntries - 1)) << 1);
        e[1] = (ulong)core.Ram.Base + (phys & ~GuestRam.PageMask) - page;
        e[0] = page;
    }

    /// <summary>Drop write entries for a page that now holds code, so stores there reach the slow path.</summary>
    public void FlushWriteEntries()
    {
        CpuState* s = core.State;
        for (int i = 0; i < CpuState.TlbEntries * 2; i += 2) s->TlbWrite[i] = ulong.MaxValue;
    }
}
