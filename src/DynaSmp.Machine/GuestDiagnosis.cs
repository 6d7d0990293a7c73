using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Memory;
using Iced.Intel;

namespace DynaSmp.Machine;

/// <summary>
/// Why a guest died, captured on the dying vCPU's thread at the moment it stopped (as QEMU's -d int,cpu_reset and KVM's
/// internal-error exit report it): vCPU, mode, CS:RIP, the instruction bytes and their disassembly, the chain of
/// exceptions, the general registers and the control registers. Printed by `dynasmp run` and carried in its --json.
/// </summary>
public sealed class GuestDiagnosis
{
    public int Vcpu { get; init; }
    public string Reason { get; init; } = "";
    public string Mode { get; init; } = "";
    public ushort Cs { get; init; }
    public ulong Rip { get; init; }
    public string InstructionBytes { get; init; } = "";
    public string Disassembly { get; init; } = "";
    public List<string> ExceptionChain { get; init; } = new();
    public Dictionary<string, string> Registers { get; init; } = new();

    internal static unsafe GuestDiagnosis Capture(Vcpu v, string reason, bool withChain)
    {
        var core = v.Core;
        CpuState* s = core.State;
        string mode = (s->Cr0 & Cr0.PE) == 0 ? "real mode"
            : (s->Efer & Efer.LMA) != 0 ? ((s->Mode & ExecMode.SizeMask) == ExecMode.Code64 ? "long mode (64-bit)" : "long mode (compatibility)")
            : (s->Rflags & RFlags.VM) != 0 ? "virtual-8086 mode"
            : (s->Mode & ExecMode.SizeMask) == ExecMode.Code32 ? "protected mode (32-bit)" : "protected mode (16-bit)";
        mode += $", CPL {s->Cpl}, paging {((s->Cr0 & Cr0.PG) != 0 ? "on" : "off")}";
        var bytes = ReadCode(core, s->Cs.Base + s->Rip);
        string disasm = "(no bytes: the instruction could not be fetched)";
        if (bytes.Length > 0)
        {
            int bitness = (s->Mode & ExecMode.SizeMask) switch { ExecMode.Code64 => 64, ExecMode.Code32 => 32, _ => 16 };
            var dec = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(bytes), s->Rip);
            dec.Decode(out var insn);
            var output = new StringOutput();
            new NasmFormatter().Format(insn, output);
            disasm = insn.Code == Code.INVALID ? "(not a valid instruction in this mode)" : output.ToStringAndReset();
            bytes = bytes[..Math.Min(bytes.Length, insn.Code == Code.INVALID ? bytes.Length : insn.Length)];
        }
        var regs = new Dictionary<string, string>();
        string[] names = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
        for (int k = 0; k < 16; k++) regs[names[k]] = $"0x{s->Gpr[k]:x16}";
        regs["rip"] = $"0x{s->Rip:x16}";
        regs["rflags"] = $"0x{Flags.Get(s):x8}";
        regs["cr0"] = $"0x{s->Cr0:x8}";
        regs["cr2"] = $"0x{s->Cr2:x16}";
        regs["cr3"] = $"0x{s->Cr3:x16}";
        regs["cr4"] = $"0x{s->Cr4:x8}";
        regs["efer"] = $"0x{s->Efer:x}";
        regs["cs"] = $"0x{s->Cs.Selector:x4}"; regs["ss"] = $"0x{s->Ss.Selector:x4}"; regs["ds"] = $"0x{s->Ds.Selector:x4}";
        var chain = new List<string>();
        if (withChain)
            foreach (var (vec, ec) in core.LastDeliveryChain)
                chain.Add(Vector.HasErrorCode(vec) ? $"{Vector.Name(vec)}(0x{ec:x})" : Vector.Name(vec));
        return new GuestDiagnosis
        {
            Vcpu = v.Id, Reason = reason, Mode = mode, Cs = s->Cs.Selector, Rip = s->Rip,
            InstructionBytes = Convert.ToHexString(bytes).ToLowerInvariant(), Disassembly = disasm, ExceptionChain = chain, Registers = regs,
        };
    }

    /// <summary>Up to 15 bytes at a linear address, stopping where a fetch would fault or leave RAM.</summary>
    static byte[] ReadCode(CpuCore core, ulong linear)
    {
        var result = new List<byte>(15);
        for (int k = 0; k < 15; k++)
        {
            ulong phys;
            try { phys = core.Mmu.Translate(linear + (ulong)k, MemAccess.Execute); }
            catch (CpuFault) { break; }
            if (!core.Ram.Contains(phys, 1)) break;
            result.Add(core.Ram.Span(phys, 1)[0]);
        }
        return result.ToArray();
    }

    /// <summary>The report as lines for a terminal.</summary>
    public string Format()
    {
        var b = new StringBuilder();
        b.AppendLine($"  vCPU {Vcpu}: {Reason}");
        b.AppendLine($"  mode: {Mode}");
        b.AppendLine($"  at CS:RIP {Cs:x4}:{Rip:x}: {(InstructionBytes.Length > 0 ? InstructionBytes : "??")}  {Disassembly}");
        if (ExceptionChain.Count > 0) b.AppendLine($"  exceptions: {string.Join(" -> ", ExceptionChain)} -> shutdown");
        var r = Registers;
        b.AppendLine($"  rax {r["rax"]} rbx {r["rbx"]} rcx {r["rcx"]} rdx {r["rdx"]}");
        b.AppendLine($"  rsi {r["rsi"]} rdi {r["rdi"]} rbp {r["rbp"]} rsp {r["rsp"]}");
        b.AppendLine($"  r8  {r["r8"]} r9  {r["r9"]} r10 {r["r10"]} r11 {r["r11"]}");
        b.AppendLine($"  r12 {r["r12"]} r13 {r["r13"]} r14 {r["r14"]} r15 {r["r15"]}");
        b.Append($"  rflags {r["rflags"]} cr0 {r["cr0"]} cr2 {r["cr2"]} cr3 {r["cr3"]} cr4 {r["cr4"]} efer {r["efer"]}");
        return b.ToString();
    }
}
