using System.Text;
using DynaSmp.Jit;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static DynaSmp.Machine.Guests.GuestLayout;

namespace DynaSmp.Machine.Guests;

/// <summary>
/// The built-in SMP guest: a multiboot v1 ELF32 image that brings up every AP the way Linux does and reports over the
/// 16550 at 0x3F8, then exits through isa-debug-exit (value 0 = every CPU came online).
/// <para>
/// BSP: multiboot entry (32-bit protected mode, EAX = 0x2BADB002) -> own GDT, identity page tables (0..1 GiB with
/// 2 MiB pages, plus the LAPIC page uncached) -> long mode -> UART init -> fw_cfg signature and FW_CFG_NB_CPUS ->
/// copy the trampoline to 0x8000 and patch its header -> for each APIC ID 1..N-1: INIT assert, INIT de-assert,
/// STARTUP x2 (Linux's wakeup_secondary_cpu_via_init), then wait for the AP's check-in flag -> summary -> exit.
/// </para>
/// <para>
/// AP: <see cref="ApTrampoline"/> (real mode -> protected mode -> long mode -> jump through the header's entry field)
/// -> secondary_startup_64 (reload GDT and segments, per-AP stack by CPUID APIC ID, LRETQ) -> start_secondary
/// (LAPIC ID; LOCK BTS into the online mask, LOCK INC of the online count, per-AP flag) -> CLI; HLT forever.
/// </para>
/// <para>
/// Time: the guest has no timer, so it estimates the TSC rate from CPUID: leaf 15H (crystal Hz x EBX/EAX) when it
/// enumerates all three values, else leaf 16H EAX (base MHz) when non-zero, else an assumed 1 GHz. QEMU TCG reports
/// neither and its TSC follows the host's, so there the delays and timeouts are shorter than nominal by the host's
/// GHz. Only <see cref="IpiDelays.Linux"/> delays and the AP check-in timeout use the estimate.
/// </para>
/// </summary>
public static class BuiltinGuest
{
    internal const uint Cr0Pg = 1u << 31;
    // PE | MP | ET | NE | WP | PG: Linux's CR0_STATE without AM.
    internal const uint Cr0Long = 0x0000_0001 | 0x0000_0002 | 0x0000_0010 | 0x0000_0020 | 0x0001_0000 | Cr0Pg;
    internal const uint Cr4Pae = 1u << 5;
    internal const uint MsrEfer = 0xC000_0080;
    internal const uint EferLme = 1u << 8, EferLma = 1u << 10;
    const uint MultibootBootloaderMagic = 0x2BAD_B002;
    const uint FwCfgSignature = 0x554D_4551; // "QEMU" read byte by byte, little-endian
    const ushort FwCfgSelectSignature = 0x0000, FwCfgSelectNbCpus = 0x0005;
    const ushort Com1 = 0x3F8;
    const int IcrSpinLimit = 1_000_000, UartSpinLimit = 1_000_000;

    // xAPIC registers (SDM Vol. 3A Table 11-1) and ICR command words (SDM Vol. 3A 11.6.1).
    const int LapicId = 0x20, LapicSvr = 0xF0, LapicEsr = 0x280, LapicIcrLow = 0x300, LapicIcrHigh = 0x310;
    const uint IcrInitAssert = 0x0000_C500;    // INIT, level-triggered, assert
    const uint IcrInitDeassert = 0x0000_8500;  // INIT, level-triggered, de-assert
    const uint IcrStartup = 0x0000_0600;       // STARTUP | vector
    const uint IcrDeliveryStatus = 1u << 12;
    const uint SvrApicEnable = 1u << 8;

    /// <summary>Builds the image. Same options, same bytes.</summary>
    public static byte[] Build(BuiltinGuestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ApTimeoutMs < 1 || options.ApTimeoutMs > 2_000_000)
            throw new ArgumentOutOfRangeException(nameof(options), "ApTimeoutMs must be 1 .. 2,000,000");
        if (options.WithholdStartupFromApicId < 0 || options.WithholdStartupFromApicId >= MaxCpus)
            throw new ArgumentOutOfRangeException(nameof(options), "WithholdStartupFromApicId must be 0 .. 254");

        var strings = new Strings();
        var data = BuildData(strings);
        var code32 = Entry32Code();
        var code64 = Code64Section(options, strings);
        var trampoline = ApTrampoline.Build();

        var first = new byte[Code64 - LoadAddress];
        Fit(code32, first, (int)(Entry32 - LoadAddress), "32-bit entry");
        uint loadEnd = TrampolineImage + (uint)trampoline.Length;
        MultibootElf.WriteMultibootHeader(first, MultibootHeader, loadEnd, Entry32, options.MultibootAddressFields);
        var second = new byte[Data - Code64];
        Fit(code64, second, 0, "64-bit code");
        var third = new byte[TrampolineImage - Data];
        Fit(data, third, 0, "data");

        return MultibootElf.Build(Entry32, new[]
        {
            new MultibootElf.Segment(LoadAddress, first, true),
            new MultibootElf.Segment(Code64, second, true),
            new MultibootElf.Segment(Data, third, false),
            new MultibootElf.Segment(TrampolineImage, trampoline, false),
        });
    }

    static void Fit(byte[] piece, byte[] slot, int offset, string what)
    {
        if (offset + piece.Length > slot.Length)
            throw new InvalidOperationException($"{what} is {piece.Length} bytes, its slot holds {slot.Length - offset}");
        piece.CopyTo(slot, offset);
    }

    /// <summary>Null, 64-bit code (L=1), 32-bit code (D=1), flat data; accessed bits preset so loads never write.</summary>
    internal static void WriteGdt(Span<byte> gdt)
    {
        BitConverter.TryWriteBytes(gdt[0..], 0UL);
        BitConverter.TryWriteBytes(gdt[Code64Selector..], 0x00AF_9B00_0000_FFFFUL);
        BitConverter.TryWriteBytes(gdt[Code32Selector..], 0x00CF_9B00_0000_FFFFUL);
        BitConverter.TryWriteBytes(gdt[DataSelector..], 0x00CF_9300_0000_FFFFUL);
    }

    internal static byte[] Assemble(Assembler a, ulong address)
    {
        return CodeBytes.Assemble(a, address);
    }

    /// <summary>Addresses of the NUL-terminated messages in the data slot.</summary>
    sealed class Strings
    {
        public uint Banner, Cpus, NoFwCfg, BadMagic, Tsc, Mhz, Src15, Src16, SrcAssumed;
        public uint Ap, Online, Timeout, NeverDelivered, Smp, Of, CpusOnline, MaskMismatch;
    }

    static byte[] BuildData(Strings s)
    {
        var bytes = new List<byte>();
        var gdt = new byte[0x20];
        WriteGdt(gdt);
        bytes.AddRange(gdt);
        // GDT pointer: limit, then a 64-bit base (32-bit LGDT reads the low 4 bytes of it).
        bytes.AddRange(BitConverter.GetBytes((ushort)(gdt.Length - 1)));
        bytes.AddRange(BitConverter.GetBytes((ulong)Gdt));
        while (bytes.Count < 0x40) bytes.Add(0);

        uint Add(string text)
        {
            uint at = Data + (uint)bytes.Count;
            bytes.AddRange(Encoding.ASCII.GetBytes(text));
            bytes.Add(0);
            return at;
        }
        s.Banner = Add("DynaSmp builtin guest: fw_cfg reports ");
        s.Cpus = Add(" CPUs\n");
        s.NoFwCfg = Add("fw_cfg: QEMU signature missing\n");
        s.BadMagic = Add("multiboot: EAX is not 0x2BADB002\n");
        s.Tsc = Add("tsc: ");
        s.Mhz = Add(" MHz (");
        s.Src15 = Add("CPUID 15H)\n");
        s.Src16 = Add("CPUID 16H)\n");
        s.SrcAssumed = Add("assumed)\n");
        s.Ap = Add("AP ");
        s.Online = Add(" online\n");
        s.Timeout = Add(" TIMEOUT\n");
        s.NeverDelivered = Add(": APIC never delivered\n");
        s.Smp = Add("SMP: ");
        s.Of = Add(" of ");
        s.CpusOnline = Add(" CPUs online\n");
        s.MaskMismatch = Add("SMP: online count and online mask disagree\n");
        return bytes.ToArray();
    }

    // Multiboot entry (multiboot spec 3.2): 32-bit protected mode, flat CS/DS, paging off, EAX = magic, EBX = info.
    // The loader's GDT is not ours to keep: load our own, build page tables, enter long mode (SDM Vol. 3A 10.8.5).
    static byte[] Entry32Code()
    {
        var a = new Assembler(32);
        var fill = a.CreateLabel();

        a.cli();
        a.cld();
        a.mov(esi, eax);                          // multiboot magic and info pointer, checked/kept for 64-bit code
        a.mov(edi, ebx);
        a.lgdt(__[GdtPointer]);
        a.mov(eax, DataSelector);
        a.mov(ds, eax);
        a.mov(es, eax);
        a.mov(ss, eax);
        a.mov(fs, eax);
        a.mov(gs, eax);
        a.mov(esp, BspStackTop);

        // Zero page tables and SMP data (the image has no BSS).
        a.push(edi);
        a.mov(edi, Pml4);
        a.mov(ecx, (RuntimeZeroEnd - Pml4) / 4);
        a.xor(eax, eax);
        a.rep.stosd();
        a.pop(edi);

        const uint present = 1, writable = 2, pwt = 8, pcd = 0x10, pageSize = 0x80;
        a.mov(__dword_ptr[Pml4], Pdpt | present | writable);
        a.mov(__dword_ptr[Pdpt], Pd0 | present | writable);
        a.mov(__dword_ptr[Pdpt + 3 * 8], Pd3 | present | writable);
        a.xor(ecx, ecx);
        a.mov(eax, present | writable | pageSize);
        a.Label(ref fill);
        a.mov(__dword_ptr[ecx * 8 + Pd0], eax);   // 512 x 2 MiB = 0 .. 1 GiB identity, write-back
        a.add(eax, 0x20_0000);
        a.inc(ecx);
        a.cmp(ecx, 512);
        a.jb(fill);
        // The xAPIC page, uncached (PCD|PWT), as Linux maps it with ioremap semantics.
        a.mov(__dword_ptr[Pd3 + ((LapicBase >> 21) & 511) * 8], LapicBase | present | writable | pwt | pcd | pageSize);

        a.mov(eax, cr4);
        a.or(eax, Cr4Pae);
        a.mov(cr4, eax);
        a.mov(eax, Pml4);
        a.mov(cr3, eax);
        a.mov(ecx, MsrEfer);
        a.rdmsr();
        a.or(eax, EferLme);
        a.wrmsr();
        a.mov(eax, Cr0Long);
        a.mov(cr0, eax);                          // IA-32e mode active, still in a 32-bit (compatibility) CS
        a.jmp(Code64Selector, Code64);            // far jump loads the L=1 code segment
        return Assemble(a, Entry32);
    }

    static byte[] Code64Section(BuiltinGuestOptions o, Strings s)
    {
        var a = new Assembler(64);
        var putc = a.CreateLabel();
        var puts = a.CreateLabel();
        var putdec = a.CreateLabel();
        var udelay = a.CreateLabel();
        var waitIcrIdle = a.CreateLabel();
        var exit = a.CreateLabel();
        var secondaryStartup64 = a.CreateLabel();
        var startSecondary = a.CreateLabel();
        bool linux = o.IpiDelays == IpiDelays.Linux;

        void Print(uint str) { a.mov(esi, str); a.call(puts); }
        void Out8(ushort port, byte value) { a.mov(edx, port); a.mov(al, value); a.@out(dx, al); }
        void Phase(uint phase) { a.mov(edx, MachineInfo.PhasePort); a.mov(eax, phase); a.@out(dx, eax); }
        void ReadTsc(AssemblerRegister64 into) { a.rdtsc(); a.shl(rdx, 32); a.or(rax, rdx); if (into != rax) a.mov(into, rax); }
        void SendIcr(uint low)
        {
            // apic_icr_write: destination into ICR high first; the write to ICR low sends the IPI.
            a.mov(eax, ebx);
            a.shl(eax, 24);
            a.mov(__dword_ptr[r15 + LapicIcrHigh], eax);
            a.mov(__dword_ptr[r15 + LapicIcrLow], low);
        }
        void ClearEsr()
        {
            // Linux clears the error status before each IPI: a write arms the register, the read returns the errors.
            a.mov(__dword_ptr[r15 + LapicEsr], 0);
            a.mov(eax, __dword_ptr[r15 + LapicEsr]);
        }

        // ---------------- BSP, 64-bit: entered by the far jump at the end of Entry32Code (must stay first). ----------
        {
            var magicOk = a.CreateLabel();
            var haveFwCfg = a.CreateLabel();
            var cpusNonZero = a.CreateLabel();
            var cpusCapped = a.CreateLabel();
            var tryLeaf16 = a.CreateLabel();
            var tscDone = a.CreateLabel();
            var apLoop = a.CreateLabel();
            var sipi = a.CreateLabel();
            var delivered = a.CreateLabel();
            var waitCallin = a.CreateLabel();
            var apOnline = a.CreateLabel();
            var apTimeout = a.CreateLabel();
            var apNext = a.CreateLabel();
            var apsDone = a.CreateLabel();
            var maskLoop = a.CreateLabel();
            var maskDone = a.CreateLabel();
            var countsAgree = a.CreateLabel();

            a.mov(eax, DataSelector);
            a.mov(ss, eax);
            a.mov(ds, eax);
            a.mov(es, eax);
            a.xor(eax, eax);
            a.mov(fs, eax);
            a.mov(gs, eax);
            a.mov(esp, BspStackTop);
            a.mov(r13d, esi);                     // multiboot magic (the low 32 bits survive the mode switch)

            // 16550: no interrupts, 115200 8N1 (divisor 1).
            Out8(Com1 + 1, 0x00);
            Out8(Com1 + 3, 0x80);
            Out8(Com1 + 0, 0x01);
            Out8(Com1 + 1, 0x00);
            Out8(Com1 + 3, 0x03);
            Phase(PhaseLongMode);
            for (int k = 0; k < o.ExtraBspNops; k++) a.nop();

            a.cmp(r13d, MultibootBootloaderMagic);
            a.je(magicOk);
            Print(s.BadMagic);                    // only a warning: nothing else depends on the loader
            a.Label(ref magicOk);

            // fw_cfg (QEMU docs/specs/fw_cfg.rst): 16-bit selector at 0x510, 8-bit data at 0x511.
            a.mov(edx, MachineInfo.FwCfgSelectorPort);
            a.mov(eax, FwCfgSelectSignature);
            a.@out(dx, ax);
            a.mov(edx, MachineInfo.FwCfgDataPort);
            for (int i = 0; i < 4; i++)
            {
                a.@in(al, dx);
                a.mov(bl, al);
                a.ror(ebx, 8);                    // after 4 rounds byte 0 is in bits 7:0
            }
            a.cmp(ebx, FwCfgSignature);
            a.je(haveFwCfg);
            Print(s.NoFwCfg);
            a.mov(eax, ExitNoFwCfg);
            a.jmp(exit);
            a.Label(ref haveFwCfg);
            a.mov(edx, MachineInfo.FwCfgSelectorPort);
            a.mov(eax, FwCfgSelectNbCpus);
            a.@out(dx, ax);
            a.mov(edx, MachineInfo.FwCfgDataPort);
            a.@in(al, dx);
            a.mov(bl, al);
            a.@in(al, dx);
            a.mov(bh, al);
            a.movzx(r12d, bx);                    // r12d = N for the rest of the BSP
            Print(s.Banner);
            a.mov(eax, r12d);
            a.call(putdec);
            Print(s.Cpus);
            a.test(r12d, r12d);
            a.jnz(cpusNonZero);
            a.mov(eax, ExitNoFwCfg);
            a.jmp(exit);
            a.Label(ref cpusNonZero);
            a.cmp(r12d, MaxCpus);
            a.jbe(cpusCapped);
            a.mov(r12d, MaxCpus);
            a.Label(ref cpusCapped);
            a.mov(__dword_ptr[NbCpus], r12d);

            // TSC ticks per microsecond: CPUID 15H, else 16H, else 1000 (see the class comment). r13 = source message.
            a.xor(eax, eax);
            a.cpuid();
            a.mov(r8d, eax);                      // highest basic leaf
            a.mov(r9d, 1000);
            a.mov(r13d, s.SrcAssumed);
            a.cmp(r8d, 0x15);
            a.jb(tryLeaf16);
            a.mov(eax, 0x15);
            a.xor(ecx, ecx);
            a.cpuid();                            // EAX = denominator, EBX = numerator, ECX = crystal Hz
            a.test(eax, eax);
            a.jz(tryLeaf16);
            a.test(ebx, ebx);
            a.jz(tryLeaf16);
            a.test(ecx, ecx);
            a.jz(tryLeaf16);
            a.mov(r10d, eax);
            a.mov(eax, ecx);                      // CPUID zero-extends into the 64-bit registers
            a.imul(rax, rbx);
            a.xor(edx, edx);
            a.div(r10);                           // TSC Hz
            a.mov(ecx, 1_000_000);
            a.xor(edx, edx);
            a.div(rcx);
            a.test(rax, rax);
            a.jz(tryLeaf16);
            a.mov(r9, rax);
            a.mov(r13d, s.Src15);
            a.jmp(tscDone);
            a.Label(ref tryLeaf16);
            a.cmp(r8d, 0x16);
            a.jb(tscDone);
            a.mov(eax, 0x16);
            a.xor(ecx, ecx);
            a.cpuid();
            a.and(eax, 0xFFFF);                   // base frequency, MHz
            a.jz(tscDone);
            a.mov(r9d, eax);
            a.mov(r13d, s.Src16);
            a.Label(ref tscDone);
            a.mov(__qword_ptr[TscPerUs], r9);
            if (linux)
            {
                Print(s.Tsc);
                a.mov(rax, __qword_ptr[TscPerUs]);
                a.call(putdec);
                Print(s.Mhz);
                a.mov(esi, r13d);
                a.call(puts);
            }

            // Software-enable the local APIC (SVR bit 8), as setup_local_APIC does before any IPI.
            a.mov(r15d, LapicBase);
            a.mov(eax, __dword_ptr[r15 + LapicSvr]);
            a.or(eax, SvrApicEnable);
            a.mov(__dword_ptr[r15 + LapicSvr], eax);

            // Copy the trampoline below 1 MiB and fill its header (setup_real_mode's job in Linux).
            a.mov(esi, TrampolineImage);
            a.mov(edi, TrampolineBase);
            a.mov(ecx, TrSize);
            a.rep.movsb();
            a.lea(rax, __[secondaryStartup64]);
            a.mov(__qword_ptr[TrampolineBase + TrStart], rax);
            a.mov(rax, cr3);
            a.mov(__dword_ptr[TrampolineBase + TrCr3], eax);
            a.mov(rax, cr4);
            a.mov(__dword_ptr[TrampolineBase + TrCr4], eax);
            a.mov(ecx, MsrEfer);
            a.rdmsr();
            a.and(eax, ~EferLma);                 // LMA is the CPU's to set when the AP turns paging on
            a.mov(__dword_ptr[TrampolineBase + TrEfer], eax);
            a.mov(__dword_ptr[TrampolineBase + TrEfer + 4], edx);
            a.mov(__dword_ptr[TrampolineBase + TrGdtPointer + 2], TrampolineBase + TrGdt);

            // One AP at a time, APIC IDs 1 .. N-1 (QEMU numbers CPUs 0 .. N-1, BSP = 0). rbx = APIC ID.
            Phase(PhaseApBringup);
            a.mov(ebx, 1);
            a.Label(ref apLoop);
            a.cmp(ebx, r12d);
            a.jae(apsDone);
            a.mov(eax, ebx);
            a.shl(eax, 12);
            a.add(eax, ApStacks + ApStackSize);
            a.mov(__qword_ptr[rbx * 8 + ApStackTable], rax);
            // The AP's first frame, written before it is woken, as Linux's fork_idle builds the idle task's stack
            // before do_boot_cpu sends INIT: the AP's first push then lands on a page already backed.
            a.mov(__qword_ptr[rax - 8], 0);

            // wakeup_secondary_cpu_via_init: INIT assert, INIT de-assert, then two STARTUPs (SDM Vol. 3A 9.4.4.1).
            a.xor(r14d, r14d);                    // accumulated "ICR still busy" status
            ClearEsr();
            SendIcr(IcrInitAssert);
            a.call(waitIcrIdle);
            a.or(r14d, eax);
            // udelay(init_udelay): 0 on modern CPUs, so nothing in either mode.
            SendIcr(IcrInitDeassert);
            a.call(waitIcrIdle);
            a.or(r14d, eax);
            a.mfence();
            var sipiDone = a.CreateLabel();
            if (o.WithholdStartupFromApicId != 0)
            {
                a.cmp(ebx, o.WithholdStartupFromApicId);
                a.je(sipiDone);
            }
            a.mov(r13d, 2);
            a.Label(ref sipi);
            ClearEsr();
            SendIcr(IcrStartup | StartupVector);
            if (linux) { a.mov(ecx, 10); a.call(udelay); }
            a.call(waitIcrIdle);
            a.or(r14d, eax);
            if (linux) { a.mov(ecx, 10); a.call(udelay); }
            a.dec(r13d);
            a.jnz(sipi);
            a.Label(ref sipiDone);
            a.test(r14d, r14d);
            a.jz(delivered);
            Print(s.Ap);
            a.mov(eax, ebx);
            a.call(putdec);
            Print(s.NeverDelivered);
            a.Label(ref delivered);

            // Wait for the AP's check-in: TSC deadline, with a spin-count backstop. r8 = start, r10 = ticks, r9 = spins.
            ReadTsc(r8);
            a.mov(rax, __qword_ptr[TscPerUs]);
            a.imul(rax, rax, o.ApTimeoutMs * 1000);
            a.mov(r10, rax);
            a.mov(r9d, ApWaitSpinLimit);
            a.Label(ref waitCallin);
            a.cmp(__byte_ptr[rbx + OnlineFlags], 0);
            a.jne(apOnline);
            a.pause();
            ReadTsc(rax);
            a.sub(rax, r8);
            a.cmp(rax, r10);
            a.jae(apTimeout);
            a.dec(r9d);
            a.jnz(waitCallin);
            a.Label(ref apTimeout);
            Print(s.Ap);
            a.mov(eax, ebx);
            a.call(putdec);
            Print(s.Timeout);
            a.jmp(apNext);
            a.Label(ref apOnline);
            Print(s.Ap);
            a.mov(eax, ebx);
            a.call(putdec);
            Print(s.Online);
            a.Label(ref apNext);
            a.inc(ebx);
            a.jmp(apLoop);

            // Summary: r13d = 1 + online count (LOCK INC by the APs), r14d = 1 + bits 1..N-1 set in the online mask.
            a.Label(ref apsDone);
            Phase(PhaseApsDone);
            a.mov(r13d, __dword_ptr[OnlineCount]);
            a.inc(r13d);
            Print(s.Smp);
            a.mov(eax, r13d);
            a.call(putdec);
            Print(s.Of);
            a.mov(eax, r12d);
            a.call(putdec);
            Print(s.CpusOnline);
            a.mov(r14d, 1);
            a.mov(ebx, 1);
            a.Label(ref maskLoop);
            a.cmp(ebx, r12d);
            a.jae(maskDone);
            a.bt(__qword_ptr[OnlineMask], rbx);   // bit-string addressing past the first qword (SDM Vol. 2A BT)
            a.adc(r14d, 0);
            a.inc(ebx);
            a.jmp(maskLoop);
            a.Label(ref maskDone);
            a.cmp(r14d, r13d);
            a.je(countsAgree);
            Print(s.MaskMismatch);
            a.mov(eax, ExitSomeApMissing);
            a.jmp(exit);
            a.Label(ref countsAgree);             // success only if every CPU is there
            a.mov(eax, ExitSuccess);
            a.mov(ecx, ExitSomeApMissing);
            a.cmp(r13d, r12d);
            a.cmovne(eax, ecx);
            // fall through to exit
        }

        // exit(eax): isa-debug-exit, then park in case the device is absent.
        {
            var park = a.CreateLabel();
            a.Label(ref exit);
            a.mov(edx, MachineInfo.DebugExitPort);
            a.@out(dx, eax);
            a.Label(ref park);
            a.cli();
            a.hlt();
            a.jmp(park);
        }

        // putc(al): poll LSR.THRE (bit 5), bounded, then write THR. Clobbers rax, rcx, rdx, r8.
        {
            var poll = a.CreateLabel();
            var ready = a.CreateLabel();
            a.Label(ref putc);
            a.mov(r8d, eax);
            a.mov(ecx, UartSpinLimit);
            a.Label(ref poll);
            a.mov(edx, Com1 + 5);
            a.@in(al, dx);
            a.test(al, 0x20);
            a.jnz(ready);
            a.pause();
            a.dec(ecx);
            a.jnz(poll);
            a.Label(ref ready);
            a.mov(edx, Com1);
            a.mov(eax, r8d);
            a.@out(dx, al);
            a.ret();
        }

        // puts(rsi): NUL-terminated. Clobbers rax, rcx, rdx, rsi, r8.
        {
            var done = a.CreateLabel();
            a.Label(ref puts);
            a.movzx(eax, __byte_ptr[rsi]);
            a.test(al, al);
            a.jz(done);
            a.call(putc);
            a.inc(rsi);
            a.jmp(puts);
            a.Label(ref done);
            a.ret();
        }

        // putdec(eax): unsigned decimal. Clobbers rax, rcx, rdx, rsi, rdi, r8.
        {
            var loop = a.CreateLabel();
            a.Label(ref putdec);
            a.sub(rsp, 24);
            a.lea(rdi, __[rsp + 23]);
            a.mov(__byte_ptr[rdi], 0);
            a.mov(ecx, 10);
            a.Label(ref loop);
            a.xor(edx, edx);
            a.div(ecx);
            a.add(dl, (byte)'0');
            a.dec(rdi);
            a.mov(__byte_ptr[rdi], dl);
            a.test(eax, eax);
            a.jnz(loop);
            a.mov(rsi, rdi);
            a.call(puts);
            a.add(rsp, 24);
            a.ret();
        }

        // udelay(ecx microseconds) by TSC. Clobbers rax, rcx, rdx, r8, r9.
        {
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            a.Label(ref udelay);
            a.test(ecx, ecx);
            a.jz(done);
            ReadTsc(r8);
            a.mov(eax, ecx);
            a.imul(rax, __qword_ptr[TscPerUs]);
            a.mov(r9, rax);
            a.Label(ref loop);
            a.pause();
            ReadTsc(rax);
            a.sub(rax, r8);
            a.cmp(rax, r9);
            a.jb(loop);
            a.Label(ref done);
            a.ret();
        }

        // waitIcrIdle: spin until ICR delivery status (bit 12) reads idle; EAX = 0 idle, 1 still busy (Linux's
        // safe_apic_wait_icr_idle). Clobbers rax, rcx.
        {
            var loop = a.CreateLabel();
            var idle = a.CreateLabel();
            a.Label(ref waitIcrIdle);
            a.mov(ecx, IcrSpinLimit);
            a.Label(ref loop);
            a.mov(eax, __dword_ptr[r15 + LapicIcrLow]);
            a.test(eax, IcrDeliveryStatus);
            a.jz(idle);
            a.pause();
            a.dec(ecx);
            a.jnz(loop);
            a.mov(eax, 1);
            a.ret();
            a.Label(ref idle);
            a.xor(eax, eax);
            a.ret();
        }

        // ---------------- AP, 64-bit: secondary_startup_64, reached through the trampoline header. ----------------
        {
            var park = a.CreateLabel();
            a.Label(ref secondaryStartup64);
            a.lgdt(__[GdtPointer]);               // the kernel's GDT instead of the trampoline's
            a.mov(eax, DataSelector);
            a.mov(ss, eax);
            a.xor(eax, eax);
            a.mov(ds, eax);
            a.mov(es, eax);
            a.mov(fs, eax);
            a.mov(gs, eax);
            a.mov(eax, 1);
            a.cpuid();
            a.shr(ebx, 24);                       // CPUID.01H:EBX[31:24] = initial APIC ID
            a.mov(rsp, __qword_ptr[rbx * 8 + ApStackTable]);
            a.test(rsp, rsp);
            a.jz(park);                           // not an AP the BSP is waiting for
            // Far return into the C-like entry, reloading CS from the new GDT (Linux: pushq $__KERNEL_CS; lretq).
            a.push(Code64Selector);
            a.lea(rax, __[startSecondary]);
            a.push(rax);
            a.AddInstruction(Instruction.Create(Code.Retfq));
            a.Label(ref park);
            a.cli();
            a.hlt();
            a.jmp(park);
        }

        // start_secondary: check in and stop. The per-AP flag goes last so the BSP sees count and mask first, and the
        // host has the AP's online mark (a port write it records on the AP's own thread) before the BSP can end the run:
        // the HLT that follows may not run before the VM stops.
        {
            var halt = a.CreateLabel();
            a.Label(ref startSecondary);
            a.mov(ecx, LapicBase);
            a.mov(eax, __dword_ptr[rcx + LapicId]);
            a.shr(eax, 24);                       // xAPIC ID register bits 31:24
            a.@lock.bts(__qword_ptr[OnlineMask], rax);
            a.@lock.inc(__dword_ptr[OnlineCount]);
            a.mov(ebx, eax);                      // Phase() clobbers eax and edx
            Phase(PhaseApOnline);
            a.mov(__byte_ptr[rbx + OnlineFlags], 1);
            a.Label(ref halt);
            a.cli();
            a.hlt();
            a.jmp(halt);
        }

        return Assemble(a, Code64);
    }
}
