using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>Feeds Iced the guest's instruction bytes through the MMU (fetch access), noting every
/// physical page it touches so the block can be invalidated when any of them is written.</summary>
sealed unsafe class GuestCodeReader(CpuCore core) : CodeReader
{
    ulong _lin;
    ulong _pagePhys = ulong.MaxValue, _pageLin = ulong.MaxValue;
    public ulong FirstPage = ulong.MaxValue, SecondPage = ulong.MaxValue;
    public CpuFault? Fault;

    public void Reset(ulong linear)
    {
        _lin = linear;
        _pageLin = ulong.MaxValue;
        FirstPage = SecondPage = ulong.MaxValue;
        Fault = null;
    }

    public override int ReadByte()
    {
        if (Fault != null) return -1;
        ulong page = _lin & ~GuestRam.PageMask;
        if (page != _pageLin)
        {
            try { _pagePhys = core.Mmu.Translate(page, MemAccess.Execute); }
            catch (CpuFault f) { Fault = f; return -1; }
            _pageLin = page;
            ulong ppage = _pagePhys >> GuestRam.PageShift;
            if (FirstPage == ulong.MaxValue) FirstPage = ppage;
            else if (ppage != FirstPage) SecondPage = ppage;
        }
        ulong phys = _pagePhys + (_lin & GuestRam.PageMask);
        _lin++;
        // Code outside RAM (open bus) reads as 0xFF bytes, as a PC does; decoding turns that into #UD.
        return core.Ram.Contains(phys, 1) ? core.Ram.Base[phys] : 0xFF;
    }
}
