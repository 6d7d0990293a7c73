using System.Runtime.CompilerServices;
using DynaSmp.Jit.Cpu;

namespace DynaSmp.Jit.Memory;

/// <summary>
/// Guest linear-memory access. The fast path is a software-TLB hit (one compare, one add) and is
/// inlined into both the interpreter and translated code; everything else goes to the slow path.
/// </summary>
/// <remarks>Guest stores are TSO; on x64 plain stores are already ordered, Volatile keeps RyuJIT from
/// merging or reordering them.</remarks>
public static unsafe class Mem
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong* ReadEntry(CpuState* s, ulong lin)
    {
        s->ProfiledReads++;
        if (lin - s->WinBase < s->WinLimit) s->ProfiledWindowHits++;
        return s->TlbRead + (((lin >> 12) & (CpuState.TlbEntries - 1)) << 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong* WriteEntry(CpuState* s, ulong lin) => s->TlbWrite + (((lin >> 12) & (CpuState.TlbEntries - 1)) << 1);

    // A hit needs the page of the access's last byte to equal the entry's tag: that also rejects accesses
    // that cross into the next page, because that page can never sit at this index.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Read8(CpuCore c, ulong lin)
    {
        ulong* e = ReadEntry(c.State, lin);
        return e[0] == (lin & ~GuestRam.PageMask) ? Volatile.Read(ref *(byte*)(lin + e[1])) : (byte)ReadSlow(c, lin, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Read16(CpuCore c, ulong lin)
    {
        ulong* e = ReadEntry(c.State, lin);
        return e[0] == ((lin + 1) & ~GuestRam.PageMask) ? Volatile.Read(ref *(ushort*)(lin + e[1])) : (ushort)ReadSlow(c, lin, 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Read32(CpuCore c, ulong lin)
    {
        ulong* e = ReadEntry(c.State, lin);
        return e[0] == ((lin + 3) & ~GuestRam.PageMask) ? Volatile.Read(ref *(uint*)(lin + e[1])) : (uint)ReadSlow(c, lin, 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read64(CpuCore c, ulong lin)
    {
        ulong* e = ReadEntry(c.State, lin);
        return e[0] == ((lin + 7) & ~GuestRam.PageMask) ? Volatile.Read(ref *(ulong*)(lin + e[1])) : ReadSlow(c, lin, 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write8(CpuCore c, ulong lin, byte v)
    {
        ulong* e = WriteEntry(c.State, lin);
        if (e[0] == (lin & ~GuestRam.PageMask)) Volatile.Write(ref *(byte*)(lin + e[1]), v);
        else WriteSlow(c, lin, 1, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write16(CpuCore c, ulong lin, ushort v)
    {
        ulong* e = WriteEntry(c.State, lin);
        if (e[0] == ((lin + 1) & ~GuestRam.PageMask)) Volatile.Write(ref *(ushort*)(lin + e[1]), v);
        else WriteSlow(c, lin, 2, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write32(CpuCore c, ulong lin, uint v)
    {
        ulong* e = WriteEntry(c.State, lin);
        if (e[0] == ((lin + 3) & ~GuestRam.PageMask)) Volatile.Write(ref *(uint*)(lin + e[1]), v);
        else WriteSlow(c, lin, 4, v);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write64(CpuCore c, ulong lin, ulong v)
    {
        ulong* e = WriteEntry(c.State, lin);
        if (e[0] == ((lin + 7) & ~GuestRam.PageMask)) Volatile.Write(ref *(ulong*)(lin + e[1]), v);
        else WriteSlow(c, lin, 8, v);
    }

    public static ulong Read(CpuCore c, ulong lin, int size) => size switch
    {
        1 => Read8(c, lin),
        2 => Read16(c, lin),
        4 => Read32(c, lin),
        _ => Read64(c, lin),
    };

    public static void Write(CpuCore c, ulong lin, int size, ulong v)
    {
        switch (size)
        {
            case 1: Write8(c, lin, (byte)v); break;
            case 2: Write16(c, lin, (ushort)v); break;
            case 4: Write32(c, lin, (uint)v); break;
            default: Write64(c, lin, v); break;
        }
    }

    /// <summary>A POP's or RET's read: as <see cref="Read"/>, left out of the read-window profile, because compiled 64-bit
    /// code reads the stack through the TLB whatever the profile says (stacks are 4 KiB pages in most kernels).</summary>
    public static ulong ReadStack(CpuCore c, ulong lin, int size)
    {
        CpuState* s = c.State;
        ulong reads = s->ProfiledReads, hits = s->ProfiledWindowHits;
        ulong v = Read(c, lin, size);
        s->ProfiledReads = reads;
        s->ProfiledWindowHits = hits;
        return v;
    }

    public static ulong ReadSlow(CpuCore c, ulong lin, int size)
    {
        if (((lin & GuestRam.PageMask) + (ulong)size) > GuestRam.PageSize)
        {
            // Crosses a page: translate both pages before reading either, so a fault leaves nothing half-done.
            c.Mmu.Translate(lin, MemAccess.Read);
            c.Mmu.Translate(lin + (ulong)size - 1, MemAccess.Read);
            ulong v = 0;
            for (int k = 0; k < size; k++) v |= (ulong)ReadSlow(c, lin + (ulong)k, 1) << (k * 8);
            return v;
        }
        ulong phys = c.Mmu.Translate(lin, MemAccess.Read);
        var ram = c.Ram;
        if (ram.Contains(phys, size))
        {
            c.Mmu.FillTlb(lin, phys, write: false);
            byte* p = ram.Base + phys;
            return size switch { 1 => *p, 2 => *(ushort*)p, 4 => *(uint*)p, _ => *(ulong*)p };
        }
        return c.Bus.MmioRead(phys, size);
    }

    public static void WriteSlow(CpuCore c, ulong lin, int size, ulong v)
    {
        if (((lin & GuestRam.PageMask) + (ulong)size) > GuestRam.PageSize)
        {
            c.Mmu.Translate(lin, MemAccess.Write);
            c.Mmu.Translate(lin + (ulong)size - 1, MemAccess.Write);
            for (int k = 0; k < size; k++) WriteSlow(c, lin + (ulong)k, 1, v >> (k * 8));
            return;
        }
        ulong phys = c.Mmu.Translate(lin, MemAccess.Write);
        var ram = c.Ram;
        c.SlowWrites++;
        if (ram.Contains(phys, size))
        {
            byte* p = ram.Base + phys;
            switch (size)
            {
                case 1: Volatile.Write(ref *p, (byte)v); break;
                case 2: Volatile.Write(ref *(ushort*)p, (ushort)v); break;
                case 4: Volatile.Write(ref *(uint*)p, (uint)v); break;
                default: Volatile.Write(ref *(ulong*)p, v); break;
            }
            // Write first, then invalidate: another vCPU decoding this page meanwhile sees either the old bytes
            // (and its block is dropped here) or the new ones.
            if (ram.IsCodePage(phys >> GuestRam.PageShift)) { c.CodePageWrites++; c.OnCodePageWrite(phys, size); }
            else c.Mmu.FillTlb(lin, phys, write: true);
            return;
        }
        c.Bus.MmioWrite(phys, size, v);
    }

    /// <summary>A host pointer for an access that stays within one RAM page, or null (MMIO, page crossing).
    /// Used for LOCK-prefixed read-modify-write, which must be one host atomic operation.</summary>
    public static byte* HostPointer(CpuCore c, ulong lin, int size, MemAccess access)
    {
        if (((lin & GuestRam.PageMask) + (ulong)size) > GuestRam.PageSize) return null;
        ulong phys = c.Mmu.Translate(lin, access);
        if (!c.Ram.Contains(phys, size)) return null;
        if (access == MemAccess.Write && c.Ram.IsCodePage(phys >> GuestRam.PageShift)) c.OnCodePageWrite(phys, size);
        // As ReadSlow and WriteSlow do, so compiled code's inline paths hit from now on: a lock word that only atomics
        // write (a spinlock's page) otherwise missed the write TLB on every compiled LOCK CMPXCHG, each then a tier-0 call.
        else c.Mmu.FillTlb(lin, phys, write: access == MemAccess.Write);
        return c.Ram.Base + phys;
    }

    // Slow-path entry points for translated code: a guest fault becomes CpuState.PendingFault instead of
    // a host exception unwinding through the DynamicMethod (whose IL locals hold the guest registers).
    /// <summary>Or-ed into a slow-path size by flat 32-bit code for an access through SS (its 4 GiB limit raises #SS).</summary>
    public const int JitStackAccess = 0x100;

    public static ulong ReadForJit(CpuCore c, ulong lin, int size)
    {
        if (WrapsFlatSegment(c, lin, ref size)) return 0;
        try { return ReadSlow(c, lin, size); }
        catch (CpuFault f) { c.SetPendingFault(f); return 0; }
    }

    public static void WriteForJit(CpuCore c, ulong lin, int size, ulong v)
    {
        if (WrapsFlatSegment(c, lin, ref size)) return;
        try { WriteSlow(c, lin, size, v); }
        catch (CpuFault f) { c.SetPendingFault(f); }
    }

    /// <summary>Flat 32-bit translated code computes offset = linear address without a limit check; an access whose
    /// last byte passes 4 GiB is the one that breaks the 4 GiB limit (SDM Vol. 3A 5.3), so it faults here, where every
    /// such access lands (the TLB tag never matches it): #SS(0) through SS (<see cref="JitStackAccess"/>), else #GP(0).
    /// Strips the flag from <paramref name="size"/>.</summary>
    static bool WrapsFlatSegment(CpuCore c, ulong lin, ref int size)
    {
        bool stack = (size & JitStackAccess) != 0;
        size &= ~JitStackAccess;
        if (lin + (ulong)(size - 1) <= uint.MaxValue || (c.State->Mode & ExecMode.SizeMask) == ExecMode.Code64) return false;
        c.SetPendingFault(stack ? CpuFault.SS() : CpuFault.GP());
        return true;
    }
}
