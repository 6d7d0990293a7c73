using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using DynaSmp.Jit.Translation;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Perf;

/// <summary>What 4-level paging costs translated code: a memory loop over 16 pages (TLB-resident: the hit
/// path is the same compare as without paging) with paging on and off, and a loop striding over 512 pages
/// (twice the 256-entry TLB, so every access misses and walks). Time per op is per guest instruction.</summary>
public unsafe class PagingCost
{
    const int Ops = 1_000_000;

    /// <summary>RDI = buffer, RSI = passes: read-modify-write every 64 bytes of 64 KiB (5 instructions a step).</summary>
    public static byte[] HitLoop()
    {
        var a = new Assembler(64);
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.xor(eax, eax);
        a.Label(ref outer);
        a.xor(ecx, ecx);
        a.Label(ref inner);
        a.add(rax, __qword_ptr[rdi + rcx]);
        a.mov(__qword_ptr[rdi + rcx + 8], rax);
        a.add(ecx, 64);
        a.cmp(ecx, 65536);
        a.jb(inner);
        a.dec(rsi);
        a.jnz(outer);
        a.hlt();
        return Assemble(a);
    }

    /// <summary>RDI = buffer, RSI = passes: one read per 4 KiB page over 2 MiB (4 instructions a step).</summary>
    public static byte[] MissLoop()
    {
        var a = new Assembler(64);
        var outer = a.CreateLabel(); var inner = a.CreateLabel();
        a.xor(eax, eax);
        a.Label(ref outer);
        a.xor(ecx, ecx);
        a.Label(ref inner);
        a.add(rax, __qword_ptr[rdi + rcx]);
        a.add(ecx, 4096);
        a.cmp(ecx, 0x20_0000);
        a.jb(inner);
        a.dec(rsi);
        a.jnz(outer);
        a.hlt();
        return Assemble(a);
    }

    static byte[] Assemble(Assembler a)
    {
        return CodeBytes.Assemble(a, BenchGuest.Code);
    }

    /// <summary>A vCPU whose 4 MiB of RAM is optionally identity-mapped with 4 KiB pages under 4-level paging.</summary>
    public sealed class Guest : IDisposable
    {
        public const ulong Buffer = 0x10_0000, Tables = 0x30_0000;
        readonly GuestRam _ram = new(4 << 20);
        public CpuCore Cpu { get; }
        readonly bool _paging;

        public Guest(byte[] code, bool paging)
        {
            _paging = paging;
            _ram.Write(BenchGuest.Code, code);
            Cpu = new CpuCore(_ram, EmptyBus.Instance, new BlockCache(_ram), new JitOptions { CompileSynchronously = true });
            if (!paging) return;
            // PML4 at Tables, PDPT +0x1000, PD +0x2000, two PTs +0x3000/+0x4000: 4 MiB identity, 4 KiB pages.
            W(Tables, (Tables + 0x1000) | 3);
            W(Tables + 0x1000, (Tables + 0x2000) | 3);
            W(Tables + 0x2000, (Tables + 0x3000) | 3);
            W(Tables + 0x2008, (Tables + 0x4000) | 3);
            for (ulong p = 0; p < 1024; p++) W(Tables + 0x3000 + p * 8, (p << 12) | 3);
        }

        void W(ulong phys, ulong v) => BitConverter.TryWriteBytes(_ram.Span(phys, 8), v);

        public ulong Run(ulong passes)
        {
            Cpu.SetFlat64(BenchGuest.Code, BenchGuest.Stack);
            if (_paging)
            {
                CpuState* s = Cpu.State;
                s->Cr3 = Tables;
                s->Cr4 |= PagingBits.Cr4Pae;
                s->Cr0 |= Cr0.PG | Cr0.WP;
                Cpu.UpdateMode();
            }
            Cpu.Gpr(7) = Buffer;
            Cpu.Gpr(6) = passes;
            var exit = Cpu.Run();
            if (exit != ExitReason.Hlt) throw new InvalidOperationException($"guest stopped with {exit}: {Cpu.ExitMessage}");
            return Cpu.Gpr(0);
        }

        public void Dispose()
        {
            Cpu.Dispose();
            _ram.Dispose();
        }
    }

    Guest _hitOff = null!, _hitOn = null!, _missOff = null!, _missOn = null!;
    const ulong HitPasses = Ops / (1024 * 5), MissPasses = Ops / (512 * 4);

    [GlobalSetup]
    public void Setup()
    {
        _hitOff = new Guest(HitLoop(), false); _hitOn = new Guest(HitLoop(), true);
        _missOff = new Guest(MissLoop(), false); _missOn = new Guest(MissLoop(), true);
        foreach (var g in new[] { _hitOff, _hitOn, _missOff, _missOn }) { g.Run(2); g.Run(2); }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _hitOff.Dispose(); _hitOn.Dispose(); _missOff.Dispose(); _missOn.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = (int)(HitPasses * 1024 * 5))]
    public ulong HitLoopPagingOff() => _hitOff.Run(HitPasses);

    [Benchmark(OperationsPerInvoke = (int)(HitPasses * 1024 * 5))]
    public ulong HitLoopPaging4Level() => _hitOn.Run(HitPasses);

    [Benchmark(OperationsPerInvoke = (int)(MissPasses * 512 * 4))]
    public ulong MissLoopPagingOff() => _missOff.Run(MissPasses);

    [Benchmark(OperationsPerInvoke = (int)(MissPasses * 512 * 4))]
    public ulong MissLoopPaging4Level() => _missOn.Run(MissPasses);

    /// <summary>One-shot Stopwatch figures (`quick-paging`): ns per guest instruction, best of five.</summary>
    public static void Quick()
    {
        var bench = new PagingCost();
        bench.Setup();
        double Best(Func<ulong> f, double instructions)
        {
            double best = double.MaxValue;
            for (int k = 0; k < 5; k++)
            {
                var sw = Stopwatch.StartNew();
                f();
                best = Math.Min(best, sw.Elapsed.TotalNanoseconds / instructions);
            }
            return best;
        }
        double hitOff = Best(() => bench._hitOff.Run(HitPasses * 10), HitPasses * 10 * 1024 * 5);
        double hitOn = Best(() => bench._hitOn.Run(HitPasses * 10), HitPasses * 10 * 1024 * 5);
        double missOff = Best(() => bench._missOff.Run(MissPasses * 10), MissPasses * 10 * 512 * 4);
        double missOn = Best(() => bench._missOn.Run(MissPasses * 10), MissPasses * 10 * 512 * 4);
        {
            var mmu = bench._missOn.Cpu.Mmu;
            ulong acc = 0;
            for (int k = 0; k < 3_000_000; k++) acc += mmu.Translate(0x100000 + (ulong)(k & 511) * 4096, MemAccess.Read); // warm up, tier up
            var sw0 = Stopwatch.StartNew();
            for (int k = 0; k < 10_000_000; k++) acc += mmu.Translate(0x100000 + (ulong)(k & 511) * 4096, MemAccess.Read);
            Console.WriteLine($"Mmu.Translate, 4-level walk over 512 pages: {sw0.Elapsed.TotalNanoseconds / 1e7:F1} ns per call (checksum {acc:x})");
        }
        Console.WriteLine($"hit loop  ns/insn: paging off {hitOff:F2}, 4-level {hitOn:F2}, on/off speed {hitOff / hitOn:P0}");
        Console.WriteLine($"miss loop ns/insn: paging off {missOff:F2}, 4-level {missOn:F2}, on/off speed {missOff / missOn:P0}");
        bench.Cleanup();
    }
}
