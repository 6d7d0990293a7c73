using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Tests.Programs;
using Iced.Intel;
using Xunit.Abstractions;

namespace DynaSmp.Tests.Hostile;

/// <summary>Item 6 audit: every legacy-encoded integer/system opcode Iced knows for 32-bit code is built (opcode,
/// ModRM with the group's reg field, zero immediates), decoded back, and run once in tier 0 at CPL 0 with every
/// exception intercepted. DynaSmp must execute it or raise an exception other than #UD; #UD is accepted only for the
/// opcodes the SDM makes #UD (UD0/UD1/UD2, and those whose register operand is invalid as built).
/// x87, MMX, SSE and AVX are outside this audit (others own them).</summary>
public unsafe class IsaAuditTests(ITestOutputHelper output)
{
    static bool OutOfScope(Code code)
    {
        foreach (var f in code.CpuidFeatures())
        {
            string n = f.ToString();
            if (n.StartsWith("FPU") || n.StartsWith("MMX") || n.StartsWith("SSE") || n.StartsWith("AVX") || n.StartsWith("AES") || n.StartsWith("SHA")
                || n.StartsWith("PCLMUL") || n.StartsWith("F16C") || n.StartsWith("FMA") || n.StartsWith("3DNOW") || n.StartsWith("XOP")
                || n.StartsWith("TBM") || n.StartsWith("GFNI") || n.StartsWith("VMX") || n.StartsWith("SVM") || n.StartsWith("SMX")
                || n.StartsWith("CYRIX") || n.StartsWith("PADLOCK") || n.StartsWith("SGX") || n.StartsWith("TDX") || n.StartsWith("AMX")
                || n.StartsWith("MPX") || n.StartsWith("CET") || n.StartsWith("KNC") || n.StartsWith("UMONITOR") || n.StartsWith("WAITPKG")
                || n is "FXSR" or "XSAVE" or "XSAVEOPT" or "XSAVEC" or "XSAVES" or "FXSAVE" or "CLFSH" or "CLFLUSHOPT" or "CLWB" or "D3NOW" or "PREFETCHW"
                || n.Contains("INTEL186") == false && n.Contains("INTEL") && n.Contains("ONLY")) return true;
        }
        return false;
    }

    /// <summary>#UD is what the SDM says for these in this test's state: features DynaSmp's CPUID does not offer or CR4 leaves off (a guest
    /// that checks CPUID never runs them), SYSCALL/SYSRET with EFER.SCE = 0, RSM outside SMM.</summary>
    static readonly HashSet<string> NotOffered = new()
    {
        "RTM", "MONITOR", "MONITORX", "SMAP", "PKU", "RDRAND", "RDSEED", "RDPID", "SVM", "SKINIT_or_SVM", "OSS", "HLE_or_RTM", "PCONFIG", "MCOMMIT",
        "CLZERO", "RDPRU", "WBNOINVD", "PTWRITE", "MOVBE", "ADX", "INVPCID", "MOVDIR64B", "ENQCMD", "MOVDIRI", "SEV_SNP", "SERIALIZE",
        "TSXLDTRK", "INVLPGB", "SEV_ES", "HRESET", "WRMSRNS", "RAO_INT", "SYSCALL", "INTEL386_ONLY", "SMM", "CET_SS", "SSSE3", "FSGSBASE", "UINTR", "LKGS", "FRED", "MSRLIST", "RMPQUERY", "TSE",
    };

    /// <summary>#UD in real mode by the SDM (protected-mode-only instructions).</summary>
    static readonly HashSet<Mnemonic> RealModeUd = [Mnemonic.Arpl, Mnemonic.Lar, Mnemonic.Lsl, Mnemonic.Verr, Mnemonic.Verw,
        Mnemonic.Sldt, Mnemonic.Str, Mnemonic.Lldt, Mnemonic.Ltr];

    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(64)]
    public void Every_legacy_integer_opcode_runs_or_raises_the_SDMs_exception(int bitness)
    {
        var holes = new List<string>();
        int audited = 0;
        foreach (Code code in Enum.GetValues<Code>())
        {
            if (code == Code.INVALID) continue;
            var op = code.ToOpCode();
            bool valid = bitness switch { 16 => op.Mode16, 32 => op.Mode32, _ => op.Mode64 };
            if (op.Encoding != EncodingKind.Legacy || !valid || op.IsInstruction == false || OutOfScope(code)) continue;
            var bytes = Build(op, bitness);
            if (bytes == null) continue;
            var insn = Iced.Intel.Decoder.Create(bitness, new ByteArrayCodeReader(bytes)).Decode();
            if (insn.Code != code) continue; // not reconstructible from the opcode table alone
            audited++;
            using var g = new Guest(Tiers.Interpret);
            g.Ram.Write(0x1000, bytes);
            if (bitness == 16) g.Cpu.SetReal(0, 0x1000, 0x8000);
            else if (bitness == 32) g.Cpu.SetFlat32(0x1000, 0x80000);
            else g.Cpu.SetFlat64(0x1000, 0x80000);
            var exit = g.Cpu.Run(1);
            if (exit == ExitReason.Exception && g.Cpu.ExitVector == Vector.UD && code is not (Code.Ud0 or Code.Ud0_r16_rm16 or Code.Ud0_r32_rm32 or Code.Ud1_r16_rm16 or Code.Ud1_r32_rm32 or Code.Ud2 or Code.Ud0_r64_rm64 or Code.Ud1_r64_rm64))
                if (!code.CpuidFeatures().All(f => NotOffered.Contains(f.ToString())) && !(bitness == 16 && RealModeUd.Contains(code.Mnemonic())))
                    holes.Add($"{code} [{string.Join(",", code.CpuidFeatures())}] ({Convert.ToHexString(bytes[..insn.Length])}: {insn})");
        }
        output.WriteLine($"audited {audited} opcodes; #UD where the SDM does not say so: {holes.Count}");
        foreach (var h in holes) output.WriteLine("  " + h);
        Assert.True(audited > 300, $"only {audited} opcodes audited");
        Assert.True(holes.Count == 0, $"{holes.Count} holes:\n{string.Join("\n", holes)}");
    }

    static byte[]? Build(OpCodeInfo op, int bitness)
    {
        var b = new List<byte>();
        if (bitness == 16 ? op.OperandSize == 32 : op.OperandSize == 16) b.Add(0x66);
        if (op.MandatoryPrefix == MandatoryPrefix.P66) b.Add(0x66);
        else if (op.MandatoryPrefix == MandatoryPrefix.PF3) b.Add(0xF3);
        else if (op.MandatoryPrefix == MandatoryPrefix.PF2) b.Add(0xF2);
        if (bitness == 64 && op.OperandSize == 64 && !op.DefaultOpSize64 && !op.ForceOpSize64) b.Add(0x48);
        switch (op.Table)
        {
            case OpCodeTableKind.Normal: break;
            case OpCodeTableKind.T0F: b.Add(0x0F); break;
            case OpCodeTableKind.T0F38: b.Add(0x0F); b.Add(0x38); break;
            case OpCodeTableKind.T0F3A: b.Add(0x0F); b.Add(0x3A); break;
            default: return null;
        }
        if (op.OpCodeLength == 2) b.Add((byte)(op.OpCode >> 8));
        b.Add((byte)op.OpCode);
        bool modrm = (op.GroupIndex >= 0) || (op.RmGroupIndex >= 0) || Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem
            or OpCodeOperandKind.mem or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r8_reg or OpCodeOperandKind.seg_reg
            or OpCodeOperandKind.cr_reg or OpCodeOperandKind.dr_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r16_rm or OpCodeOperandKind.r16_or_mem
            or OpCodeOperandKind.r32_or_mem_mpx or OpCodeOperandKind.r16_reg_mem or OpCodeOperandKind.r32_reg_mem or OpCodeOperandKind.mem_offs);
        if (modrm)
        {
            int reg = (op.GroupIndex >= 0) ? op.GroupIndex : 0;
            bool needsMem = Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) == OpCodeOperandKind.mem);
            int rm = (op.RmGroupIndex >= 0) ? op.RmGroupIndex : 0;
            // mod=00 rm=101: [disp32] (address 0x2000, in RAM); mod=11 for register forms.
            if ((op.RmGroupIndex >= 0) || !needsMem && op.ToString().Contains("r32_rm") ) b.Add((byte)(0xC0 | reg << 3 | rm));
            else if (needsMem || Enumerable.Range(0, op.OpCount).Any(k => op.GetOpKind(k) is OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem))
            {
                // [disp32] (32-bit), [disp16] (16-bit), [rip+disp32] (64-bit): all land in RAM.
                if (bitness == 16) { b.Add((byte)(reg << 3 | 6)); b.AddRange(BitConverter.GetBytes((ushort)0x2000)); }
                else { b.Add((byte)(reg << 3 | 5)); b.AddRange(BitConverter.GetBytes(0x2000)); }
            }
            else b.Add((byte)(0xC0 | reg << 3 | rm));
        }
        for (int k = 0; k < 10; k++) b.Add(0); // immediates, displacements; zeros
        return b.ToArray();
    }
}
