using DynaSmp.Jit.Cpu;
using static DynaSmp.Jit.Memory.PagingBits;

namespace DynaSmp.Jit.Memory;

/// <summary>
/// Page walks for 32-bit, PAE and 4-level paging (Intel SDM Vol. 3A 4.3, 4.4, 4.5), with the access-rights
/// rules of 4.6 and the accessed/dirty updates of 4.8.
/// </summary>
/// <remarks>
/// Paging-structure entries are read from guest RAM; an entry outside RAM is read through
/// <see cref="IGuestBus.MmioRead"/>, as the hardware's walk would (an empty bus floats all-ones, which is a
/// present entry with reserved bits set: a RSVD #PF). Accessed/dirty bits are set only when the whole
/// translation succeeds, so a faulting access changes no memory; each is set with a locked compare-exchange
/// on the entry, and the walk restarts if another vCPU changed the entry meanwhile (as the locked
/// read-modify-write of the hardware walker does). Bits cannot be set in entries outside RAM.
/// </remarks>
public sealed unsafe partial class Mmu
{
    // PAE PDPTE registers (SDM 4.4.1): loaded from CR3 when paging structures are (re)loaded, and lazily
    // when CR3 was set directly (tests, state restore) so the cache does not belong to that CR3 yet.
    readonly ulong[] _pdpte = new ulong[4];
    ulong _pdpteCr3 = ulong.MaxValue;

    /// <summary>Bits of a present PAE PDPTE that must be 0: 2:1, 8:5 and 63:M (SDM Table 4-8).</summary>
    public const ulong PdpteReserved = 0x1E6UL | ~((1UL << MaxPhysAddr) - 1);

    /// <summary>True when every present PDPTE at <paramref name="cr3"/> has its reserved bits clear: MOV to CR3
    /// (and the CR0/CR4 writes that load PDPTEs) must raise #GP(0) otherwise (SDM 4.4.1).</summary>
    public bool PdptesAreValid(ulong cr3)
    {
        for (int i = 0; i < 4; i++)
        {
            ulong e = ReadPhys64((cr3 & 0xFFFF_FFE0) + (ulong)i * 8);
            if ((e & Present) != 0 && (e & PdpteReserved) != 0) return false;
        }
        return true;
    }

    void LoadPdptes()
    {
        ulong cr3 = core.State->Cr3;
        for (int i = 0; i < 4; i++) _pdpte[i] = ReadPhys64((cr3 & 0xFFFF_FFE0) + (ulong)i * 8);
        _pdpteCr3 = cr3;
    }

    ulong ReadPhys64(ulong phys)
    {
        var ram = core.Ram;
        return ram.Contains(phys, 8) ? Volatile.Read(ref *(ulong*)(ram.Base + phys)) : core.Bus.MmioRead(phys, 8);
    }

    uint ReadPhys32(ulong phys)
    {
        var ram = core.Ram;
        return ram.Contains(phys, 4) ? Volatile.Read(ref *(uint*)(ram.Base + phys)) : (uint)core.Bus.MmioRead(phys, 4);
    }

    /// <summary>Sets <paramref name="bits"/> in the 64-bit entry at <paramref name="phys"/> if it still holds
    /// <paramref name="seen"/>. False when the entry changed under us (the walk must restart).</summary>
    bool SetBits64(ulong phys, ulong seen, ulong bits)
    {
        if ((seen & bits) == bits || !core.Ram.Contains(phys, 8)) return true;
        return Interlocked.CompareExchange(ref *(ulong*)(core.Ram.Base + phys), seen | bits, seen) == seen;
    }

    bool SetBits32(ulong phys, uint seen, uint bits)
    {
        if ((seen & bits) == bits || !core.Ram.Contains(phys, 4)) return true;
        return Interlocked.CompareExchange(ref *(uint*)(core.Ram.Base + phys), seen | bits, seen) == seen;
    }

    CpuFault PageFault(ulong lin, ulong errorCode)
    {
        // CR2 is loaded when the #PF is delivered (SDM 4.7); faults are precise here, so loading it at raise
        // time is equivalent.
        core.State->Cr2 = lin;
        return new CpuFault(Vector.PF, errorCode);
    }

    ulong Walk(ulong lin, MemAccess access)
    {
        CpuState* s = core.State;
        bool user = s->Cpl == 3 && ImplicitSupervisor == 0;
        bool write = access == MemAccess.Write, fetch = access == MemAccess.Execute;
        bool pae = (s->Cr4 & Cr4Pae) != 0, nxe = pae && (s->Efer & Efer.NXE) != 0, smep = (s->Cr4 & Cr4Smep) != 0;
        ulong error = (write ? PageFaultError.W : 0) | (user ? PageFaultError.U : 0)
            | (fetch && (smep || nxe) ? PageFaultError.ID : 0);
        while (true)
        {
            ulong phys;
            bool done = !pae ? Walk32(lin, user, write, fetch, smep, error, out phys)
                : Walk64(lin, user, write, fetch, smep, nxe, error, out phys);
            if (done) return phys;
            // An entry changed while setting accessed/dirty bits: walk again.
        }
    }

    /// <summary>Applies SDM 4.6 to the accumulated rights: <paramref name="rw"/>/<paramref name="us"/> are set
    /// only when R/W (U/S) is 1 in every entry of the walk, <paramref name="xd"/> when any entry has XD (with NXE).</summary>
    static bool Allowed(bool user, bool write, bool fetch, bool smep, bool wp, bool rw, bool us, bool xd)
    {
        if (fetch)
        {
            if (xd) return false;
            return user ? us : !(smep && us); // SMEP: no supervisor fetch from a user-mode address
        }
        if (user) return us && (!write || rw);
        return !write || rw || !wp; // supervisor: writes to read-only pages only while CR0.WP = 0
    }

    /// <summary>32-bit paging (SDM 4.3): two levels of 4-byte entries; 4 MiB pages with CR4.PSE (PSE-36 bits
    /// 20:13 give physical bits 39:32, bit 21 is reserved).</summary>
    bool Walk32(ulong lin, bool user, bool write, bool fetch, bool smep, ulong error, out ulong phys)
    {
        CpuState* s = core.State;
        uint la = (uint)lin;
        ulong pdeAddr = (s->Cr3 & 0xFFFF_F000) + ((la >> 22) << 2);
        uint pde = ReadPhys32(pdeAddr);
        if ((pde & Present) == 0) throw PageFault(lin, error);
        bool wp = (s->Cr0 & Cr0.WP) != 0;
        bool global = (s->Cr4 & Cr4Pge) != 0;
        if ((pde & PageSize) != 0 && (s->Cr4 & Cr4Pse) != 0)
        {
            if ((pde & (1u << 21)) != 0) throw PageFault(lin, error | PageFaultError.P | PageFaultError.Rsvd);
            if (!Allowed(user, write, fetch, smep, wp, (pde & Writable) != 0, (pde & User) != 0, false))
                throw PageFault(lin, error | PageFaultError.P);
            if (!SetBits32(pdeAddr, pde, (uint)(Accessed | (write ? Dirty : 0)))) { phys = 0; return false; }
            phys = (pde & 0xFFC0_0000u) | ((ulong)((pde >> 13) & 0xFF) << 32) | (la & 0x3F_FFFFu);
            Remember(lin, 0x3F_FFFF, global && (pde & Global) != 0);
            return true;
        }
        ulong pteAddr = (pde & 0xFFFF_F000u) + (((la >> 12) & 0x3FF) << 2);
        uint pte = ReadPhys32(pteAddr);
        if ((pte & Present) == 0) throw PageFault(lin, error);
        bool rw = (pde & pte & Writable) != 0, us = (pde & pte & User) != 0;
        if (!Allowed(user, write, fetch, smep, wp, rw, us, false)) throw PageFault(lin, error | PageFaultError.P);
        if (!SetBits32(pdeAddr, pde, (uint)Accessed)) { phys = 0; return false; }
        if (!SetBits32(pteAddr, pte, (uint)(Accessed | (write ? Dirty : 0)))) { phys = 0; return false; }
        phys = (pte & 0xFFFF_F000u) | (la & 0xFFFu);
        Remember(lin, GuestRam.PageMask, global && (pte & Global) != 0);
        return true;
    }

    /// <summary>PAE paging (SDM 4.4: PDPTE registers, then PD and PT with 8-byte entries, 2 MiB pages) and
    /// 4-level paging (SDM 4.5: PML4, PDPT with 1 GiB pages, PD with 2 MiB pages, PT).</summary>
    bool Walk64(ulong lin, bool user, bool write, bool fetch, bool smep, bool nxe, ulong error, out ulong phys)
    {
        CpuState* s = core.State;
        bool longMode = (s->Efer & Efer.LMA) != 0;
        if (longMode && FastWalk4(lin, user, write, fetch, smep, nxe, out phys, out ulong fastSpan, out bool fastGlobal))
        {
            Remember(lin, fastSpan, fastGlobal);
            return true;
        }
        ulong rsvdFault = error | PageFaultError.P | PageFaultError.Rsvd;
        // Reserved in every entry: bits 51:M; without NXE bit 63 (XD); under PAE also bits 62:52.
        ulong reserved = ReservedHighPhys | (nxe ? 0 : ExecuteDisable) | (longMode ? 0 : 0x7FF0_0000_0000_0000UL);
        ulong table;
        int level;
        if (longMode)
        {
            // A non-canonical address never reaches the walk on hardware: the access raises #GP (SDM 3.3.7.1).
            if ((ulong)((long)(lin << 16) >> 16) != lin) throw CpuFault.GP();
            table = s->Cr3 & AddressMask;
            level = 4;
        }
        else
        {
            lin &= 0xFFFF_FFFF;
            if (s->Cr3 != _pdpteCr3) LoadPdptes();
            ulong pdpte = _pdpte[(lin >> 30) & 3];
            if ((pdpte & Present) == 0) throw PageFault(lin, error);
            if ((pdpte & PdpteReserved) != 0) throw PageFault(lin, rsvdFault);
            table = pdpte & AddressMask;
            level = 2;
        }

        // Entries of this walk, top-down, to set accessed/dirty bits once the translation is known to succeed.
        ulong* addrs = stackalloc ulong[4];
        ulong* vals = stackalloc ulong[4];
        int n = 0;
        bool rw = true, us = true, xd = false;
        ulong span;
        ulong entry;
        while (true)
        {
            int shift = 12 + 9 * (level - 1);
            ulong addr = table + (((lin >> shift) & 511) << 3);
            entry = ReadPhys64(addr);
            if ((entry & Present) == 0) throw PageFault(lin, error);
            bool large = level is 2 or 3 && (entry & PageSize) != 0;
            ulong rsvd = reserved;
            if (level == 4) rsvd |= PageSize; // PML4E bit 7 is reserved (SDM Table 4-15)
            else if (large) rsvd |= level == 3 ? 0x3FFF_E000UL : 0x1F_E000UL; // bits 29:13 / 20:13 of a 1 GiB / 2 MiB page
            if ((entry & rsvd) != 0) throw PageFault(lin, rsvdFault);
            addrs[n] = addr; vals[n] = entry; n++;
            rw &= (entry & Writable) != 0;
            us &= (entry & User) != 0;
            xd |= nxe && (entry & ExecuteDisable) != 0;
            if (level == 1 || large) { span = (1UL << shift) - 1; break; }
            table = entry & AddressMask;
            level--;
        }
        if (!Allowed(user, write, fetch, smep, (s->Cr0 & Cr0.WP) != 0, rw, us, xd)) throw PageFault(lin, error | PageFaultError.P);
        for (int k = 0; k < n; k++)
        {
            ulong bits = k == n - 1 && write ? Accessed | Dirty : Accessed;
            if (!SetBits64(addrs[k], vals[k], bits)) { phys = 0; return false; }
        }
        phys = (entry & AddressMask & ~span) | (lin & span);
        Remember(lin, span, (s->Cr4 & Cr4Pge) != 0 && (entry & Global) != 0);
        return true;
    }

    /// <summary>
    /// The common 4-level case, straight-line: every entry present, no reserved bit, access allowed, and the
    /// accessed (and for writes, dirty) bits already set, so nothing is written, not even the last translation
    /// (<see cref="Remember"/> is the caller's): the read window probes neighbouring pages with it. Anything else returns
    /// false and the general walk above handles it (faults, A/D updates) exactly as before.
    /// </summary>
    /// <remarks>PERF: the general walk measured 42-60 ns per 4-level miss, mostly its own bookkeeping.</remarks>
    bool FastWalk4(ulong lin, bool user, bool write, bool fetch, bool smep, bool nxe, out ulong phys, out ulong span, out bool global)
    {
        phys = 0; span = 0; global = false;
        CpuState* s = core.State;
        if ((ulong)((long)(lin << 16) >> 16) != lin) return false;
        var ram = core.Ram;
        byte* ramBase = ram.Base;
        ulong ramSize = ram.Size;
        ulong reserved = ReservedHighPhys | (nxe ? 0 : ExecuteDisable);
        const ulong need = Present | Accessed;

        ulong a4 = (s->Cr3 & AddressMask) + (((lin >> 39) & 511) << 3);
        if (a4 + 8 > ramSize) return false;
        ulong e4 = Volatile.Read(ref *(ulong*)(ramBase + a4));
        if ((e4 & need) != need || (e4 & (reserved | PageSize)) != 0) return false;

        ulong a3 = (e4 & AddressMask) + (((lin >> 30) & 511) << 3);
        if (a3 + 8 > ramSize) return false;
        ulong e3 = Volatile.Read(ref *(ulong*)(ramBase + a3));
        if ((e3 & need) != need || (e3 & reserved) != 0) return false;
        ulong all = e4 & e3, any = e4 | e3;
        ulong leaf = e3;
        span = (1UL << 30) - 1;
        if ((e3 & PageSize) == 0)
        {
            ulong a2 = (e3 & AddressMask) + (((lin >> 21) & 511) << 3);
            if (a2 + 8 > ramSize) return false;
            ulong e2 = Volatile.Read(ref *(ulong*)(ramBase + a2));
            if ((e2 & need) != need || (e2 & reserved) != 0) return false;
            all &= e2; any |= e2;
            leaf = e2; span = (1UL << 21) - 1;
            if ((e2 & PageSize) == 0)
            {
                ulong a1 = (e2 & AddressMask) + (((lin >> 12) & 511) << 3);
                if (a1 + 8 > ramSize) return false;
                ulong e1 = Volatile.Read(ref *(ulong*)(ramBase + a1));
                if ((e1 & need) != need || (e1 & reserved) != 0) return false;
                all &= e1; any |= e1;
                leaf = e1; span = GuestRam.PageMask;
            }
            else if ((e2 & 0x1F_E000UL) != 0) return false; // 2 MiB page reserved bits 20:13
        }
        else if ((e3 & 0x3FFF_E000UL) != 0) return false;   // 1 GiB page reserved bits 29:13
        if (write && (leaf & Dirty) == 0) return false;      // the dirty bit must be set: the general walk does it
        bool xd = nxe && (any & ExecuteDisable) != 0;
        if (!Allowed(user, write, fetch, smep, (s->Cr0 & Cr0.WP) != 0, (all & Writable) != 0, (all & User) != 0, xd)) return false;
        phys = (leaf & AddressMask & ~span) | (lin & span);
        global = (s->Cr4 & Cr4Pge) != 0 && (leaf & Global) != 0;
        return true;
    }

    void Remember(ulong lin, ulong span, bool global)
    {
        _lastPage = lin & ~GuestRam.PageMask;
        _lastSpan = span;
        _lastGlobal = global;
        _lastCacheable = ImplicitSupervisor == 0 || core.State->Cpl != 3;
    }
}
