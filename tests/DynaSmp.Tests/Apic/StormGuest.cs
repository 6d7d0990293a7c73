using DynaSmp.Jit;
using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Apic;

/// <summary>
/// An SMP guest in which the APs storm each other with INIT/SIPI sequences and fixed IPIs.
/// The BSP (64-bit, flat) wakes every AP with Linux's INIT / de-assert / SIPI / SIPI and halts. An AP entering at
/// a trampoline (vector 0x08 or 0x0A, identical code) records its start state (CS, its IP, MSW, EDX, FLAGS) in its
/// slot, counts the start, switches to 32-bit protected mode, software-enables its APIC and then, while a shared
/// budget lasts, picks pseudo-random other APs and sends them: a fixed IPI, INIT+SIPI(8), the Linux 4-IPI sequence
/// with SIPI(0x0A), a lone SIPI (stale), or SIPI then INIT (the SIPI must die). Then it halts with IF=0.
/// </summary>
static class StormGuest
{
    public const ulong GdtBase = 0x7000, Gdtr = 0x7100, Slots = 0x9000, RunSeed = 0x9F00, Budget = 0x9F04, Done = 0x9F08;
    public const ulong Pm32 = 0x2_0000, BspCode = 0x10_0000;
    public const byte VecA = 0x08, VecB = 0x0A;
    /// <summary>IP the trampoline's "call next; next: pop bp" records: the offset of "next".</summary>
    public static ushort RecordedIp { get; private set; }

    // Slot layout (32 bytes per APIC ID).
    public const int SlotCount = 0, SlotCs = 4, SlotIp = 6, SlotMsw = 8, SlotEdx = 12, SlotFlags = 16;

    static byte B(ulong x) => (byte)(x & 0xFF);

    public static ulong Slot(int id) => Slots + (ulong)id * 32;

    public static Vm Build(int vcpus, int seed, uint budget, JitOptions jit, int traceCapacity = 8192)
    {
        var vm = new Vm(new VmConfig
        {
            Vcpus = vcpus, MemoryBytes = 4 << 20, DeterministicSeed = seed, Jit = jit, TraceCapacity = traceCapacity,
            DeterministicSlice = 60,
        });
        vm.Ram.Write(GdtBase, [.. BitConverter.GetBytes(0UL), .. BitConverter.GetBytes(0x00CF9A000000FFFFUL), .. BitConverter.GetBytes(0x00CF92000000FFFFUL)]);
        vm.Ram.Write(Gdtr, [0x17, 0, B(GdtBase), B(GdtBase >> 8), 0, 0]);
        vm.Ram.Write(RunSeed, BitConverter.GetBytes((uint)seed * 2654435761u));
        vm.Ram.Write(Budget, BitConverter.GetBytes(budget));

        // ---- trampoline (16-bit, runs at CS = VV00, IP = 0; DS = SS = 0 from INIT) ----
        var t = new Assembler(16);
        var next = t.CreateLabel();
        t.mov(esi, edx);                  // EDX = processor signature after INIT
        t.pushf();
        t.pop(di);                        // FLAGS as INIT left them
        t.call(next);
        t.Label(ref next);
        t.pop(bp);                        // IP of "next": proves entry at IP 0
        t.mov(eax, 1);
        t.cpuid();
        t.shr(ebx, 24);
        t.shl(bx, 5);
        t.add(bx, (ushort)Slots);
        t.mov(ax, cs);
        t.mov(__word_ptr[bx + SlotCs], ax);
        t.mov(__word_ptr[bx + SlotIp], bp);
        t.smsw(ax);
        t.mov(__word_ptr[bx + SlotMsw], ax);
        t.mov(__dword_ptr[bx + SlotEdx], esi);
        t.mov(__word_ptr[bx + SlotFlags], di);
        t.@lock.inc(__dword_ptr[bx + SlotCount]); // last: the record is complete when the count moves
        t.db(0x0F, 0x01, 0x16, B(Gdtr), B(Gdtr >> 8)); // lgdt [Gdtr]
        t.mov(eax, cr0);
        t.or(al, 1);
        t.mov(cr0, eax);
        t.db(0x66, 0xEA, B(Pm32), B(Pm32 >> 8), B(Pm32 >> 16), B(Pm32 >> 24), 0x08, 0x00); // jmp far 08:Pm32
        var tramp = ApicKit.Assemble(t, 0);
        RecordedIp = (ushort)(3 + 1 + 1 + 3); // mov esi,edx (66 8B F2) + pushf + pop di + call rel16 (E8 xx xx)
        vm.Ram.Write((ulong)VecA << 12, tramp);
        vm.Ram.Write((ulong)VecB << 12, tramp);

        // ---- 32-bit storm loop ----
        int aps = vcpus - 1;
        var p = new Assembler(32);
        Label loop = p.CreateLabel(), done = p.CreateLabel(), park = p.CreateLabel();
        Label op34 = p.CreateLabel(), op5 = p.CreateLabel(), op6 = p.CreateLabel(), op7 = p.CreateLabel();
        p.mov(ax, 0x10); p.mov(ds, ax); p.mov(es, ax); p.mov(ss, ax);
        p.mov(eax, 1); p.cpuid(); p.shr(ebx, 24); p.mov(esi, ebx);
        p.mov(esp, esi); p.shl(esp, 8); p.add(esp, 0x3_0000);
        p.mov(edi, 0xFEE0_0000u);
        p.mov(__dword_ptr[edi + 0xF0], 0x1FF);
        p.mov(ebp, __dword_ptr[(uint)RunSeed]); p.add(ebp, esi); p.imul(ebp, ebp, unchecked((int)0x9E3779B1));
        p.Label(ref loop);
        p.@lock.dec(__dword_ptr[(uint)Budget]);
        p.js(done);
        p.imul(ebp, ebp, 1103515245); p.add(ebp, 12345);
        p.mov(eax, ebp); p.shr(eax, 8); p.xor(edx, edx); p.mov(ecx, aps); p.div(ecx); p.lea(ebx, __[edx + 1]);
        p.cmp(ebx, esi); p.je(loop);
        p.shl(ebx, 24);
        p.mov(__dword_ptr[edi + 0x310], ebx);
        p.mov(eax, ebp); p.shr(eax, 24); p.and(eax, 7);
        p.cmp(eax, 3); p.je(op34); p.cmp(eax, 4); p.je(op34);
        p.cmp(eax, 5); p.je(op5); p.cmp(eax, 6); p.je(op6); p.cmp(eax, 7); p.je(op7);
        p.mov(ecx, ebp); p.shr(ecx, 4); p.and(ecx, 0xF); p.add(ecx, 0x40);
        p.mov(__dword_ptr[edi + 0x300], ecx);            // 0-2: fixed IPI 0x40..0x4F
        p.jmp(loop);
        p.Label(ref op34);                                 // INIT + SIPI(8)
        p.mov(__dword_ptr[edi + 0x300], 0xC500);
        p.mov(__dword_ptr[edi + 0x300], 0x600 | VecA);
        p.jmp(loop);
        p.Label(ref op5);                                  // Linux: INIT, de-assert, SIPI, SIPI (vector 0x0A)
        p.mov(__dword_ptr[edi + 0x300], 0xC500);
        p.mov(__dword_ptr[edi + 0x300], 0x8500);
        p.mov(__dword_ptr[edi + 0x300], 0x600 | VecB);
        p.mov(__dword_ptr[edi + 0x300], 0x600 | VecB);
        p.jmp(loop);
        p.Label(ref op6);                                  // lone SIPI: starts only a vCPU in wait-for-SIPI
        p.mov(__dword_ptr[edi + 0x300], 0x600 | VecA);
        p.jmp(loop);
        p.Label(ref op7);                                  // SIPI then INIT: the INIT kills the SIPI
        p.mov(__dword_ptr[edi + 0x300], 0x600 | VecB);
        p.mov(__dword_ptr[edi + 0x300], 0xC500);
        p.jmp(loop);
        p.Label(ref done);
        p.@lock.inc(__dword_ptr[(uint)Done]);
        p.cli();
        p.Label(ref park);
        p.hlt();
        p.jmp(park);
        vm.Ram.Write(Pm32, ApicKit.Assemble(p, Pm32));

        // ---- BSP: Linux-style wake of every AP, then halt ----
        var b = new Assembler(64);
        b.mov(rdi, 0xFEE0_0000UL);
        for (int ap = 1; ap < vcpus; ap++)
        {
            foreach (uint low in new uint[] { 0xC500, 0x8500, 0x600u | VecA, 0x600u | VecA })
            {
                b.mov(__dword_ptr[rdi + 0x310], ap << 24);
                b.mov(__dword_ptr[rdi + 0x300], low);
            }
        }
        var bpark = b.CreateLabel();
        b.cli();
        b.Label(ref bpark);
        b.hlt();
        b.jmp(bpark);
        vm.Ram.Write(BspCode, ApicKit.Assemble(b, BspCode));
        vm.Vcpus[0].Core.SetFlat64(BspCode, 0x7_0000);
        return vm;
    }
}
