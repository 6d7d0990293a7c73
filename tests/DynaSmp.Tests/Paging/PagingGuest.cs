using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;

namespace DynaSmp.Tests.Paging;

/// <summary>A vCPU with page tables built by the test in guest RAM. Tables are allocated from 0x100000 up;
/// code lives at 0x1000 and the stack below 0x8000, both identity-mapped by the test's setup.</summary>
public sealed unsafe class PagingGuest : IDisposable
{
    public const ulong P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100, XD = 1UL << 63;
    public const ulong Cr4Pse = 1 << 4, Cr4Pae = 1 << 5, Cr4Pge = 1 << 7, Cr4Smep = 1 << 20;

    public readonly GuestRam Ram = new(32 << 20);
    public readonly CpuCore Cpu;
    public readonly int Bits;
    ulong _nextTable = 0x100000;

    public static TheoryData<int> Tiers => new() { 0, 1 };

    public PagingGuest(int tier, int bits, JitOptions? options = null)
    {
        Bits = bits;
        var opts = options ?? (tier == 0 ? JitOptions.InterpretOnly : JitOptions.CompileFirst);
        Cpu = new CpuCore(Ram, EmptyBus.Instance, new BlockCache(Ram), opts);
    }

    public CpuState* S => Cpu.State;

    public ulong NewTable()
    {
        ulong t = _nextTable;
        _nextTable += 0x1000;
        Ram.Span(t, 0x1000).Clear();
        return t;
    }

    public ulong Read64(ulong phys) => BitConverter.ToUInt64(Ram.Span(phys, 8));
    public uint Read32(ulong phys) => BitConverter.ToUInt32(Ram.Span(phys, 4));
    public void Write64(ulong phys, ulong v) => BitConverter.TryWriteBytes(Ram.Span(phys, 8), v);
    public void Write32(ulong phys, uint v) => BitConverter.TryWriteBytes(Ram.Span(phys, 4), v);

    /// <summary>4-level / PAE: maps <paramref name="lin"/> with a leaf at <paramref name="leafLevel"/>
    /// (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB) under <paramref name="root"/> (PML4 for 4-level, PDPT for PAE).
    /// Intermediate entries get <paramref name="upper"/>. Returns the physical address of the leaf entry.</summary>
    public ulong Map64(ulong root, ulong lin, ulong phys, ulong leafFlags, int leafLevel = 1, ulong upper = P | RW | US, bool pae = false)
    {
        int level = pae ? 3 : 4;
        ulong table = root;
        while (true)
        {
            int shift = 12 + 9 * (level - 1);
            ulong index = pae && level == 3 ? (lin >> 30) & 3 : (lin >> shift) & 511;
            ulong addr = table + index * 8;
            if (level == leafLevel)
            {
                Write64(addr, phys | leafFlags | (level > 1 ? PS : 0));
                return addr;
            }
            ulong e = Read64(addr);
            if ((e & P) == 0)
            {
                e = NewTable() | (pae && level == 3 ? P : upper);
                Write64(addr, e);
            }
            table = e & 0x000F_FFFF_FFFF_F000;
            level--;
        }
    }

    /// <summary>32-bit paging: a 4 KiB mapping (leafLevel 1) or a 4 MiB PSE page (2). Returns the leaf entry address.</summary>
    public ulong Map32(ulong pd, uint lin, uint phys, uint leafFlags, int leafLevel = 1, uint upper = (uint)(P | RW | US))
    {
        ulong pdeAddr = pd + (lin >> 22) * 4;
        if (leafLevel == 2)
        {
            Write32(pdeAddr, phys | leafFlags | (uint)PS);
            return pdeAddr;
        }
        uint pde = Read32(pdeAddr);
        if ((pde & P) == 0) { pde = (uint)NewTable() | upper; Write32(pdeAddr, pde); }
        ulong pteAddr = (pde & 0xFFFF_F000u) + ((lin >> 12) & 0x3FF) * 4;
        Write32(pteAddr, phys | leafFlags);
        return pteAddr;
    }

    /// <summary>A 64-bit guest under 4-level paging: code at 0x1000 and the stack page below 0x8000, in the first 64 KiB
    /// identity-mapped with user-accessible 4 KiB pages; everything else is the test's to map under the returned PML4.</summary>
    public static (PagingGuest G, ulong Pml4) LongMode(int tier, Action<Assembler> code, ulong eferBits = 0, ulong cr4Bits = 0, bool wp = true)
    {
        var g = new PagingGuest(tier, 64);
        g.Cpu.SetFlat64(0x1000, 0x8000);
        ulong pml4 = g.NewTable();
        for (ulong lin = 0; lin < 0x10000; lin += 0x1000) g.Map64(pml4, lin, lin, P | RW | US);
        g.Code(0x1000, 0x1000, code);
        g.EnablePaging(pml4, Cr4Pae | cr4Bits, eferBits, wp);
        return (g, pml4);
    }

    /// <summary>Loads code at physical <paramref name="phys"/>.</summary>
    public void Code(ulong phys, ulong ip, Action<Assembler> build)
    {
        var a = new Assembler(Bits);
        build(a);
        Ram.Write(phys, CodeBytes.Assemble(a, ip));
    }

    /// <summary>Turns paging on by writing state directly (as a VMM or the MOV CR helper would).</summary>
    public void EnablePaging(ulong cr3, ulong cr4Bits, ulong eferBits = 0, bool wp = true)
    {
        S->Cr3 = cr3;
        S->Cr4 |= cr4Bits;
        S->Efer |= eferBits;
        S->Cr0 |= Cr0.PG | (wp ? Cr0.WP : 0);
        Cpu.UpdateMode();
        Cpu.Mmu.FlushAll();
    }

    public ExitReason Run() => Cpu.Run(1_000_000);

    public void AssertHlt()
    {
        var r = Cpu.Run(1_000_000);
        Assert.True(r == ExitReason.Hlt, $"{r}: {Cpu.ExitMessage} vector {Cpu.ExitVector} error {Cpu.ExitErrorCode:x}");
    }

    public void AssertPageFault(ulong errorCode, ulong cr2)
    {
        var r = Cpu.Run(1_000_000);
        Assert.True(r == ExitReason.Exception, $"{r}: {Cpu.ExitMessage}");
        Assert.Equal(Vector.PF, Cpu.ExitVector);
        Assert.Equal(errorCode, Cpu.ExitErrorCode);
        Assert.Equal(cr2, S->Cr2);
    }

    /// <summary>Makes CPL 3 (CS.RPL = 3), keeping the code segment's other attributes.</summary>
    public void EnterUser()
    {
        S->Cs.Selector = (ushort)(S->Cs.Selector | 3);
        S->Ss.Selector = (ushort)(S->Ss.Selector | 3);
        Cpu.UpdateMode();
    }

    public void Dispose()
    {
        Cpu.Dispose();
        Ram.Dispose();
    }
}
