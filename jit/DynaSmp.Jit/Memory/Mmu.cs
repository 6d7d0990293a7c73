using DynaSmp.Jit.Cpu;
using static DynaSmp.Jit.Memory.PagingBits;

namespace DynaSmp.Jit.Memory;

/// <summary>
/// Linear-to-physical translation (Intel SDM Vol. 3A chapter 4) and the software TLB of one vCPU.
/// </summary>
/// <remarks>
/// The TLB hit path (Mem, BlockEmitter) compares only the tag, so every permission decision is made when
/// an entry is filled: read entries are filled by reads, write entries only by writes (whose walk has set
/// the dirty bit), and entries hold for the CPL they were filled at (the TLB is flushed when CPL changes).
/// Large pages are cached as the 4 KiB pieces touched; each slot remembers the size of the page it came
/// from so INVLPG drops every piece of a large page, and whether it is global (survives a CR3 load).
/// </remarks>
public sealed unsafe partial class Mmu(CpuCore core)
{
    // Per TLB slot: linear bits covered by the mapping's page (0xFFF, 0x1FFFFF, 0x3FFFFF or 0x3FFFFFFF) and its global bit.
    readonly ulong[] _readSpan = new ulong[CpuState.TlbEntries], _writeSpan = new ulong[CpuState.TlbEntries];
    readonly bool[] _readGlobal = new bool[CpuState.TlbEntries], _writeGlobal = new bool[CpuState.TlbEntries];

    // Slots filled since the TLB was last empty (read slot i as i, write slot i as TlbEntries + i), so that a flush writes
    // only those: a full flush stored 512 tags over 8 KiB, and an AP's bring-up flushes seven times (INIT, SIPI, CR0.PE,
    // CR4, CR3, CR0.PG, EFER) with a handful of pages touched in between. Past FillLogSize the log is given up
    // (_fillCount = FillLogOverflow) and flushes scan every slot, as before. A slot may be logged twice (INVLPG empties a
    // slot without unlogging it); clearing it twice is harmless.
    const int FillLogSize = 48, FillLogOverflow = FillLogSize + 1;
    readonly short[] _fillLog = new short[FillLogSize];
    int _fillCount;

    /// <summary>CpuState's read window is the all-of-RAM one of paging off (<see cref="SyncWindowWithPaging"/>).</summary>
    bool _windowIsPhysical;
    // The window's large page is global (CR4.PGE and G): a CR3 load keeps it, as it keeps the page's TLB entries.
    bool _windowGlobal;

    /// <summary>Keeps the read window true to CR0.PG: all of RAM while paging is off (linear = physical), and not that
    /// once it is on. Called where CR0 changes (<see cref="OnControlRegisterWrite"/>) and at each CpuCore.Run, for the
    /// writes from outside the guest (a VMM or loader setting CR0, an INIT's reset); it writes only on a change.</summary>
    internal void SyncWindowWithPaging()
    {
        CpuState* s = core.State;
        bool paging = (s->Cr0 & Cr0.PG) != 0;
        if (paging != _windowIsPhysical) return;
        _windowIsPhysical = !paging;
        s->WinBase = 0;
        s->WinAddend = s->RamBase;
        s->WinLimit = paging ? 0 : s->RamSize - 8;
    }

    /// <summary>Empties the read window (not the all-of-RAM one of paging off, which no TLB flush changes) and forgets
    /// every window measured so far.</summary>
    void DropWindow()
    {
        Array.Clear(_windowMemo);
        if (!_windowIsPhysical) core.State->WinLimit = 0;
    }

    // The last successful translation, consumed by FillTlb (Mem calls Translate, then FillTlb for RAM pages).
    ulong _lastPage = ulong.MaxValue, _lastSpan;
    bool _lastGlobal, _lastCacheable;

    /// <summary>The page-offset mask and globalness of the last <see cref="Translate"/>'s mapping.</summary>
    internal ulong LastSpan => _lastSpan;
    internal bool LastGlobal => _lastGlobal;

    /// <summary>Non-zero while the CPU makes implicit supervisor-mode accesses (descriptor tables, IDT, TSS:
    /// SDM 4.6.1): such accesses ignore CPL 3 for U/S checks, and their translations are not cached in the TLB
    /// (which would otherwise let CPL-3 code hit a supervisor page). Use <see cref="Supervisor"/>.</summary>
    public int ImplicitSupervisor;

    /// <summary>`using var _ = mmu.Supervisor();` around descriptor-table, TSS and inner-stack accesses.</summary>
    public SupervisorScope Supervisor()
    {
        ImplicitSupervisor++;
        return new SupervisorScope(this);
    }

    /// <summary>Ends an implicit-supervisor region; a ref struct, so the scope costs no allocation.</summary>
    public readonly ref struct SupervisorScope(Mmu mmu)
    {
        public void Dispose() => mmu.ImplicitSupervisor--;
    }

    /// <summary>Physical address for a linear one, or a guest fault (#PF with CR2 loaded; #GP for a
    /// non-canonical address under 4-level paging).</summary>
    public ulong Translate(ulong lin, MemAccess access)
    {
        CpuState* s = core.State;
        if ((s->Cr0 & Cr0.PG) == 0)
        {
            // Without paging the linear address is physical; outside 64-bit code it is 32 bits wide.
            ulong phys = (s->Mode & ExecMode.SizeMask) == ExecMode.Code64 ? lin : lin & 0xFFFF_FFFF;
            _lastPage = lin & ~GuestRam.PageMask;
            _lastSpan = GuestRam.PageMask;
            _lastGlobal = false;
            _lastCacheable = true;
            return phys;
        }
        return Walk(lin, access);
    }

    /// <summary>Caches the translation Translate just made for <paramref name="lin"/> (for reads, or writes when
    /// <paramref name="write"/>). Does nothing when that translation may not be cached.</summary>
    public void FillTlb(ulong lin, ulong phys, bool write)
    {
        CpuState* s = core.State;
        ulong page = lin & ~GuestRam.PageMask;
        if (page != _lastPage || !_lastCacheable) return;
        int index = (int)((lin >> 12) & (CpuState.TlbEntries - 1));
        ulong* e = (write ? s->TlbWrite : s->TlbRead) + (index << 1);
        if (e[0] == ulong.MaxValue) LogFill(write ? CpuState.TlbEntries + index : index);
        if (write) { _writeSpan[index] = _lastSpan; _writeGlobal[index] = _lastGlobal; }
        else { _readSpan[index] = _lastSpan; _readGlobal[index] = _lastGlobal; }
        e[1] = (ulong)core.Ram.Base + (phys & ~GuestRam.PageMask) - page;
        e[0] = page;
        if (!write && _lastSpan > GuestRam.PageMask) OpenWindow(lin, phys);
    }

    // Large pages a window may take in on each side of the one filled: 64 x 2 MiB = 128 MiB each way, about 1.2 us of
    // probing at ~19 ns a walk, paid once per large-page read miss.
    const int WindowReach = 64;

    // Windows already measured out since the last flush, reused when a fill lands in one again. PERF: a Linux boot
    // opened the window 2.1 M times (its kernel image and direct map take turns) and probed 35 M neighbours for it.
    const int WindowMemoSize = 4;
    readonly (ulong Lo, ulong Hi, ulong Offset, bool Global)[] _windowMemo = new (ulong, ulong, ulong, bool)[WindowMemoSize];
    int _windowMemoNext;

    /// <summary>Makes the large page just filled for a read the read window (unless any of it is outside RAM), taken
    /// in with its neighbours of the same size that map at the same offset: a direct map or an identity map is then one
    /// window, not a page at a time. Under 4-level paging only neighbours whose entries already have the accessed bit
    /// count (<see cref="FastWalk4"/> sets nothing), so the window caches no translation a TLB could not.</summary>
    void OpenWindow(ulong lin, ulong phys)
    {
        CpuState* s = core.State;
        ulong span = _lastSpan, size = span + 1;
        ulong linBase = lin & ~span, physBase = phys & ~span, offset = physBase - linBase;
        if (!InRam(physBase, size)) return;
        ulong lo = linBase, hi = linBase + size;
        bool global = _lastGlobal;
        int memo = FindWindow(linBase, offset);
        if (memo >= 0) (lo, hi, _, global) = _windowMemo[memo];
        else if ((s->Efer & Efer.LMA) != 0)
        {
            bool user = s->Cpl == 3, smep = (s->Cr4 & Cr4Smep) != 0, nxe = (s->Efer & Efer.NXE) != 0;
            for (int k = 0; k < WindowReach && hi != 0 && Neighbour(hi); k++) hi += size;
            for (int k = 0; k < WindowReach && lo >= size && Neighbour(lo - size); k++) lo -= size;
            _windowMemo[_windowMemoNext] = (lo, hi, offset, global);
            _windowMemoNext = (_windowMemoNext + 1) % WindowMemoSize;

            bool Neighbour(ulong at)
            {
                if (!FastWalk4(at, user, write: false, fetch: false, smep, nxe, out ulong p, out ulong pSpan, out bool pGlobal)) return false;
                if (pSpan != span || p - at != offset || !InRam(p, size)) return false;
                global &= pGlobal;
                return true;
            }
        }
        s->WinBase = lo;
        s->WinAddend = (ulong)core.Ram.Base + offset;
        s->WinLimit = hi - lo - 8;
        _windowGlobal = global;
    }

    int FindWindow(ulong linBase, ulong offset)
    {
        for (int k = 0; k < WindowMemoSize; k++)
        {
            var w = _windowMemo[k];
            if (w.Hi != 0 && linBase - w.Lo < w.Hi - w.Lo && w.Offset == offset) return k;
        }
        return -1;
    }

    bool InRam(ulong phys, ulong size) => phys < core.Ram.Size && size <= core.Ram.Size - phys;

    /// <summary>Guest-visible TLB flushes this CPU performed (full, non-global, INVLPG), for statistics.</summary>
    public long TlbFlushes;

    void LogFill(int slot)
    {
        if (_fillCount < FillLogSize) _fillLog[_fillCount++] = (short)slot;
        else _fillCount = FillLogOverflow;
    }

    /// <summary>The tag of logged slot <paramref name="slot"/> (read slots, then write slots).</summary>
    ulong* Tag(int slot) => slot < CpuState.TlbEntries ? core.State->TlbRead + (slot << 1) : core.State->TlbWrite + ((slot - CpuState.TlbEntries) << 1);

    bool IsGlobal(int slot) => slot < CpuState.TlbEntries ? _readGlobal[slot] : _writeGlobal[slot - CpuState.TlbEntries];

    /// <summary>Drop write entries for a page that now holds code, so stores there reach the slow path.</summary>
    public void FlushWriteEntries()
    {
        if (_fillCount <= FillLogSize)
        {
            for (int k = 0; k < _fillCount; k++) if (_fillLog[k] >= CpuState.TlbEntries) *Tag(_fillLog[k]) = ulong.MaxValue;
            return;
        }
        CpuState* s = core.State;
        for (int i = 0; i < CpuState.TlbEntries * 2; i += 2) s->TlbWrite[i] = ulong.MaxValue;
    }

    /// <summary>Empties the TLB, without counting a guest flush or touching the jump cache (a CPL change).</summary>
    public void DropAllEntries()
    {
        if (_fillCount <= FillLogSize)
            for (int k = 0; k < _fillCount; k++) *Tag(_fillLog[k]) = ulong.MaxValue;
        else core.State->FlushTlb();
        _fillCount = 0;
        _lastPage = ulong.MaxValue;
        DropWindow();
    }

    /// <summary>Invalidates every TLB entry, global or not (MOV CR4 changing PGE, CR0.PG/WP changes).</summary>
    public void FlushAll()
    {
        TlbFlushes++;
        DropAllEntries();
        FlushJumpCache();
    }

    /// <summary>Invalidates the non-global entries (MOV to CR3, SDM 4.10.4.1).</summary>
    public void FlushNonGlobal()
    {
        TlbFlushes++;
        // A global window stays, as its pages' TLB entries do; the remembered windows may hold non-global pages measured
        // in the old address space, so they go either way.
        if (_windowGlobal) Array.Clear(_windowMemo);
        else DropWindow();
        if (_fillCount <= FillLogSize)
        {
            // Keep the global entries in the log, compacted.
            int kept = 0;
            for (int k = 0; k < _fillCount; k++)
            {
                int slot = _fillLog[k];
                ulong* tag = Tag(slot);
                if (*tag == ulong.MaxValue) continue;
                if (IsGlobal(slot)) _fillLog[kept++] = (short)slot;
                else *tag = ulong.MaxValue;
            }
            _fillCount = kept;
        }
        else
        {
            CpuState* s = core.State;
            _fillCount = 0;
            for (int i = 0; i < CpuState.TlbEntries; i++)
            {
                if (!_readGlobal[i]) s->TlbRead[i << 1] = ulong.MaxValue;
                else if (s->TlbRead[i << 1] != ulong.MaxValue) LogFill(i);
                if (!_writeGlobal[i]) s->TlbWrite[i << 1] = ulong.MaxValue;
                else if (s->TlbWrite[i << 1] != ulong.MaxValue) LogFill(CpuState.TlbEntries + i);
            }
        }
        _lastPage = ulong.MaxValue;
        core.JumpCache.FlushNonGlobal();
        core.State->FlushReturnStack();
    }

    /// <summary>INVLPG: invalidates the entries for the page holding <paramref name="lin"/>, global or not,
    /// including every cached piece of a large page that contains it (SDM 4.10.4.1).</summary>
    public void FlushPage(ulong lin)
    {
        TlbFlushes++;
        DropWindow();
        CpuState* s = core.State;
        if (_fillCount <= FillLogSize)
        {
            for (int k = 0; k < _fillCount; k++)
            {
                int slot = _fillLog[k];
                ulong* tag = Tag(slot);
                ulong span = slot < CpuState.TlbEntries ? _readSpan[slot] : _writeSpan[slot - CpuState.TlbEntries];
                if (*tag != ulong.MaxValue && ((*tag ^ lin) & ~span) == 0) *tag = ulong.MaxValue;
            }
            _lastPage = ulong.MaxValue;
            FlushCodeAt(lin);
            return;
        }
        for (int i = 0; i < CpuState.TlbEntries; i++)
        {
            ulong tag = s->TlbRead[i << 1];
            if (tag != ulong.MaxValue && ((tag ^ lin) & ~_readSpan[i]) == 0) s->TlbRead[i << 1] = ulong.MaxValue;
            tag = s->TlbWrite[i << 1];
            if (tag != ulong.MaxValue && ((tag ^ lin) & ~_writeSpan[i]) == 0) s->TlbWrite[i << 1] = ulong.MaxValue;
        }
        _lastPage = ulong.MaxValue;
        FlushCodeAt(lin);
    }

    /// <summary>Translated code is keyed by physical address but found by linear RIP through the jump cache:
    /// a mapping change must drop it so the next lookup translates RIP again.</summary>
    void FlushJumpCache()
    {
        core.JumpCache.Flush();
        core.State->FlushReturnStack();
    }

    /// <summary>INVLPG's share of <see cref="FlushJumpCache"/>: the jump-cache entries and predicted returns whose code
    /// the page holding <paramref name="lin"/> may map.</summary>
    /// <remarks>PERF: Linux issues INVLPG for kernel data pages all through a boot (vmalloc, text_poke, kmap); each
    /// used to empty the whole jump cache and return stack.</remarks>
    void FlushCodeAt(ulong lin)
    {
        core.JumpCache.FlushPage(lin);
        core.State->FlushReturnStackNear(lin);
    }

    /// <summary>Call after a MOV to CR0, CR3 or CR4 has stored <paramref name="newValue"/>: flushes what the
    /// SDM says the write invalidates (4.10.4.1) and reloads the PAE PDPTE registers (4.4.1).</summary>
    public void OnControlRegisterWrite(int cr, ulong oldValue, ulong newValue)
    {
        switch (cr)
        {
            case 0:
                if (((oldValue ^ newValue) & (Cr0.PG | Cr0.WP | Cr0.PE)) != 0) FlushAll();
                break;
            case 3:
                FlushNonGlobal();
                break;
            case 4:
                if (((oldValue ^ newValue) & (Cr4Pge | Cr4Pae | Cr4Pse | Cr4Smep | Cr4Smap | Cr4Pcide | Cr4La57)) != 0) FlushAll();
                break;
            default:
                return;
        }
        CpuState* s = core.State;
        if ((s->Cr0 & Cr0.PG) != 0 && (s->Cr4 & Cr4Pae) != 0 && (s->Efer & Efer.LMA) == 0) LoadPdptes();
        else _pdpteCr3 = ulong.MaxValue;
        if (cr == 0) SyncWindowWithPaging();
    }

    /// <summary>Call after WRMSR changed IA32_EFER: NXE changes what every cached translation permits.</summary>
    public void OnEferWrite(ulong oldValue, ulong newValue)
    {
        if (((oldValue ^ newValue) & (Efer.NXE | Efer.LMA)) != 0) FlushAll();
    }

    /// <summary>Called when CPL changes: TLB entries hold the permissions of the CPL that filled them.
    /// Linear-to-physical mappings do not change, so the jump cache (keyed by mode, which includes the
    /// user bit) stays.</summary>
    public void OnCplChange() => DropAllEntries();
}
