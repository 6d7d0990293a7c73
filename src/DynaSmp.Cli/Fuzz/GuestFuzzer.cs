using System.Buffers.Binary;
using DynaSmp.Machine;
using Iced.Intel;

namespace DynaSmp.Cli.Fuzz;

/// <summary>How one fuzz run ended. HostError and Hang are failures (a DynaSmp bug); the rest are guest outcomes.</summary>
public enum FuzzOutcome { GuestExit, TripleFault, Unsupported, Timeout, HostError, Hang }

/// <summary>
/// Generates hostile multiboot guests from a seed and runs them under a short deadline: random bytes, or random valid
/// instruction streams (random bytes filtered through Iced's decoder and re-emitted) in 32-bit or 64-bit code for the
/// BSP (64-bit after a long-mode entry the image does itself) and 16-bit code for APs started by INIT/SIPI, salted with privileged instructions, random MSR and port accesses, random
/// MMIO, IPIs with random ICR values, and stores into the code itself. Same seed, same image.
/// </summary>
public static class GuestFuzzer
{
    public static (byte[] Image, int Vcpus, string Kind) Generate(int seed)
    {
        var rng = new Random(seed);
        int vcpus = rng.Next(1, 9);
        if (rng.Next(4) == 0)
        {
            var junk = new byte[rng.Next(16, 4096)];
            rng.NextBytes(junk);
            return (GuestImages.Flat(junk), vcpus, "random-bytes");
        }
        var a = new List<byte>();
        // Start the APs at a 16-bit random stream placed at 0x8000 (copied by the BSP from the image).
        var ap = Stream(rng, 16, 256);
        int apOffsetFixup = -1;
        if (vcpus > 1)
        {
            Emit(a, 0xBE); apOffsetFixup = a.Count; Emit32(a, 0);                 // mov esi, ap code
            Emit(a, 0xBF); Emit32(a, GuestImages.Trampoline);                     // mov edi, 0x8000
            Emit(a, 0xB9); Emit32(a, (uint)ap.Length);                            // mov ecx, length
            Emit(a, 0xFC, 0xF3, 0xA4);                                            // cld; rep movsb
            Icr(a, 0x000C_4500); Icr(a, 0x000C_4608); Icr(a, 0x000C_4608);        // INIT, SIPI, SIPI to all but self
        }
        bool longMode = rng.Next(3) == 0;
        if (longMode) a.AddRange(GuestImages.EnterLongMode(GuestImages.Entry + (uint)a.Count));
        a.AddRange(Stream(rng, longMode ? 64 : 32, 512));
        a.Add(0xF4);
        if (apOffsetFixup >= 0)
            BinaryPrimitives.WriteUInt32LittleEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(a)[apOffsetFixup..], GuestImages.Entry + (uint)a.Count);
        a.AddRange(ap);
        return (GuestImages.Flat(a.ToArray()), vcpus, longMode ? "instructions-64" : "instructions");
    }

    static void Icr(List<byte> a, uint value)
    {
        Emit(a, 0xC7, 0x05); Emit32(a, GuestImages.ApicBase + 0x300); Emit32(a, value);
    }

    static void Emit(List<byte> a, params byte[] b) => a.AddRange(b);
    static void Emit32(List<byte> a, uint v) { Span<byte> t = stackalloc byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(t, v); a.AddRange(t.ToArray()); }

    /// <summary>About <paramref name="bytes"/> bytes of valid <paramref name="bitness"/>-bit instructions and salt.</summary>
    static byte[] Stream(Random rng, int bitness, int bytes)
    {
        var output = new List<byte>();
        var raw = new byte[16];
        while (output.Count < bytes)
        {
            int pick = rng.Next(20);
            if (pick < 14)
            {
                rng.NextBytes(raw);
                var dec = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(raw));
                dec.Decode(out var insn);
                if (insn.Code == Code.INVALID || insn.Length == 0) continue;
                output.AddRange(raw.AsSpan(0, insn.Length).ToArray());
                continue;
            }
            bool o32 = bitness == 32, o64 = bitness == 64;
            switch (pick)
            {
                case 14: // random MSR read or write
                    output.AddRange(o32 || o64 ? [(byte)0xB9] : [(byte)0x66, (byte)0xB9]);
                    output.AddRange(BitConverter.GetBytes(RandomMsr(rng)));
                    output.AddRange(rng.Next(2) == 0 ? [(byte)0x0F, (byte)0x32] : [(byte)0x0F, (byte)0x30]);
                    break;
                case 15: // random port access
                    output.AddRange(o32 || o64 ? [(byte)0xBA] : [(byte)0x66, (byte)0xBA]);
                    output.AddRange(BitConverter.GetBytes((uint)rng.Next(0x10000)));
                    output.Add((byte)(0xEC + rng.Next(4))); // in/out al/eax, dx
                    break;
                case 16: // random MMIO store, mostly at the LAPIC (IPIs with random ICR values to random APIC IDs)
                {
                    uint addr = rng.Next(3) switch { 0 => (uint)rng.NextInt64(0x1_0000_0000), 1 => GuestImages.ApicBase + 0x310, _ => GuestImages.ApicBase + (uint)rng.Next(0x400) };
                    StoreAbsolute(output, bitness, addr, addr == GuestImages.ApicBase + 0x310 ? (uint)rng.Next(256) << 24 : (uint)rng.NextInt64(0x1_0000_0000));
                    if (addr == GuestImages.ApicBase + 0x310)
                        StoreAbsolute(output, bitness, GuestImages.ApicBase + 0x300, (uint)rng.NextInt64(0x1_0000_0000) & 0x000C_CFFF);
                    break;
                }
                case 17: // self-modifying code: store random bytes just ahead
                    // call $+5; pop ebx (rbx in 64-bit mode); mov dword [ebx + d8], imm32
                    if (o32 || o64) { output.AddRange([0xE8, 0, 0, 0, 0, 0x5B, 0xC7, 0x43, (byte)rng.Next(8, 40)]); output.AddRange(BitConverter.GetBytes(rng.Next())); }
                    break;
                case 18: // privileged and system instructions
                    byte[][] priv = [[0x0F, 0x20, 0xC0], [0x0F, 0x22, 0xC0], [0x0F, 0x22, 0xD8], [0x0F, 0x22, 0xE0], [0x0F, 0x01, 0xF8], [0x0F, 0x00, 0xD8], [0xFA], [0xFB], [0xF4], [0x0F, 0x09], [0x0F, 0x08], [0x0F, 0x01, 0x10], [0x0F, 0x01, 0x18], [0xCF], [0x0F, 0xA2]];
                    output.AddRange(priv[rng.Next(priv.Length)]);
                    break;
                default: // an interrupt or exception on purpose
                    byte[][] ints = [[0xCC], [0xCD, (byte)rng.Next(256)], [0x0F, 0x0B], [0xF1], [0xCE]];
                    output.AddRange(ints[rng.Next(ints.Length)]);
                    break;
            }
        }
        return output.ToArray();
    }

    /// <summary>mov dword [addr], value: a 32-bit absolute address in every mode (in 64-bit mode through a SIB byte,
    /// since ModRM 05 there is RIP-relative).</summary>
    static void StoreAbsolute(List<byte> output, int bitness, uint addr, uint value)
    {
        if (bitness == 16) output.AddRange([0x66, 0x67]);
        output.AddRange(bitness == 64 ? [0xC7, 0x04, 0x25] : [0xC7, 0x05]);
        output.AddRange(BitConverter.GetBytes(addr));
        output.AddRange(BitConverter.GetBytes(value));
    }

    static uint RandomMsr(Random rng)
    {
        uint[] known = [0x10, 0x1B, 0x3A, 0xC0000080, 0xC0000081, 0xC0000082, 0xC0000100, 0xC0000101, 0xC0000102, 0x6E0, 0x802, 0x830, 0x838, 0x80F, 0x277, 0x2FF, 0x174, 0x175, 0x176];
        return rng.Next(2) == 0 ? known[rng.Next(known.Length)] : (uint)rng.NextInt64(0x1_0000_0000);
    }

    public static readonly TimeSpan HangAfter = TimeSpan.FromSeconds(2);

    /// <summary>Past <see cref="HangAfter"/>, a wall-clock wait alone cannot tell a hang from a host so loaded (a long
    /// fuzz run beside other work) that the vCPU threads were barely scheduled: a hang is threads that had
    /// <see cref="HangCpu"/> of process CPU time after that and still did not leave, or still run after <see cref="HangWall"/>.</summary>
    static bool JoinedOnceScheduled(Vm vm, out string why)
    {
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        var cpu0 = self.TotalProcessorTime;
        var wall = System.Diagnostics.Stopwatch.StartNew();
        while (!vm.Join(TimeSpan.FromMilliseconds(100)))
        {
            self.Refresh();
            var cpu = self.TotalProcessorTime - cpu0;
            if (cpu >= HangCpu || wall.Elapsed >= HangWall)
            {
                why = $"vCPU threads still running {HangAfter.TotalSeconds + wall.Elapsed.TotalSeconds:F1} s after the deadline, with {cpu.TotalSeconds:F1} s of CPU time in the last {wall.Elapsed.TotalSeconds:F1} s";
                return false;
            }
        }
        why = "";
        return true;
    }

    static readonly TimeSpan HangCpu = TimeSpan.FromSeconds(1), HangWall = TimeSpan.FromSeconds(60);

    /// <summary>Runs one generated guest; never throws. The deadline is the run's own (set-up, run, join).</summary>
    public static (FuzzOutcome Outcome, string Detail) RunOne(byte[] image, int vcpus, double timeoutSeconds)
    {
        var deadline = new Deadline(timeoutSeconds, backstop: false);
        Pc? pc = null;
        try
        {
            pc = new Pc(new VmConfig { Vcpus = vcpus, MemoryBytes = 16 << 20, Trace = false }, _ => { });
            try { pc.LoadMultiboot(image); }
            catch (DynaSmp.Machine.Loaders.MultibootImageException e) { return (FuzzOutcome.GuestExit, $"loader refused: {e.Message}"); }
            pc.Vm.Start();
            // A hang is a vCPU that never leaves; 2 s past the deadline separates it from a host overloaded by other work.
            Supervisor.Watch([pc.Vm], deadline, long.MaxValue, null, out bool joined, HangAfter);
            if (!joined && !JoinedOnceScheduled(pc.Vm, out string why)) { var p = pc; pc = null; return (FuzzOutcome.Hang, $"{why} ({p.Vm.ExitKind})"); }
            var vm = pc.Vm;
            return vm.ExitKind switch
            {
                VmExitKind.DebugExit => (FuzzOutcome.GuestExit, vm.ExitMessage ?? ""),
                VmExitKind.TripleFault => (FuzzOutcome.TripleFault, vm.ExitMessage ?? ""),
                VmExitKind.Unsupported => (FuzzOutcome.Unsupported, vm.ExitMessage ?? ""),
                VmExitKind.Timeout => (FuzzOutcome.Timeout, ""),
                VmExitKind.GuestError => (FuzzOutcome.TripleFault, vm.ExitMessage ?? ""),
                // Random bytes reach port 0x92, 0x64 and 0xCF9 and the ACPI PM block: a reset or power-off is the guest's own doing.
                VmExitKind.Reset or VmExitKind.PowerOff => (FuzzOutcome.GuestExit, $"{vm.ExitKind}: {vm.ExitMessage}"),
                _ => (FuzzOutcome.HostError, $"{vm.ExitKind}: {vm.ExitMessage}"),
            };
        }
        catch (Exception e)
        {
            return (FuzzOutcome.HostError, $"{e.GetType().Name}: {e.Message}");
        }
        finally
        {
            pc?.Dispose();
        }
    }
}
