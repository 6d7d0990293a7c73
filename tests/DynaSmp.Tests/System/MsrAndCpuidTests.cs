using System.Text;
using DynaSmp.Jit;
using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.SystemInsns;

/// <summary>The MSR table (SDM Vol. 4 architectural MSRs), the machine's MSR hooks, and CPUID leaves.</summary>
public unsafe class MsrAndCpuidTests
{
    static void Gp(Action a)
    {
        var f = Assert.Throws<CpuFault>(a);
        Assert.Equal(Vector.GP, f.Vector);
        Assert.Equal(0UL, f.ErrorCode);
    }

    public static TheoryData<uint, ulong> ReadBack() => new()
    {
        { Msr.SysenterCs, 0x10 }, { Msr.SysenterEsp, 0xFFFF_8000_0000_1000 }, { Msr.SysenterEip, 0x7FFF_FFFF_F000 },
        { Msr.Star, 0x0023_0010_0000_0000 }, { Msr.Lstar, 0xFFFF_FFFF_8100_0000 }, { Msr.Cstar, 0x1234 },
        { Msr.Sfmask, 0x4_7700 }, { Msr.FsBase, 0x7F00_0000_1000 }, { Msr.GsBase, 0xFFFF_8880_0000_0000 },
        { Msr.KernelGsBase, 0xFFFF_FFFF_FFFF_F000 }, { Msr.TscAux, 3 }, { Msr.Pat, 0x0007_0106_0007_0406 },
        { Msr.MtrrDefType, 0xC06 }, { Msr.MtrrPhysBase0, 0xF_0000_0006 }, { Msr.MtrrPhysBase0 + 1, 0xF_FFFF_F800 },
        { Msr.MtrrPhysBase0 + 15, 0xFF_FFFF_F800 }, { Msr.MtrrFix64K_00000, 0x0606_0606_0606_0606 },
        { Msr.MtrrFix16K_A0000, 0x0000_0000_0101_0101 }, { Msr.MtrrFix4K_C0000 + 7, 0x0505_0505_0505_0505 },
        { Msr.ApicBase, 0xFEE0_0900 },
    };

    [Theory, MemberData(nameof(ReadBack))]
    public void Msr_reads_back_what_was_written(uint index, ulong value)
    {
        using var m = new SysMachine(0, _ => { });
        Interp.WriteMsr(m.Cpu, index, value);
        Assert.Equal(value, Interp.ReadMsr(m.Cpu, index));
    }

    public static TheoryData<uint, ulong> Invalid() => new()
    {
        { 0x1234_5678, 0 },                    // unknown
        { Msr.MtrrCap, 0 },                    // read-only
        { Msr.FeatureControl, 5 },             // locked
        { 0x802, 0 },                          // x2APIC range without the machine
        { Msr.Lstar, 0x0000_8000_0000_0000 },  // non-canonical
        { Msr.FsBase, 0x8000_0000_0000_0000 },
        { Msr.KernelGsBase, 0x0001_0000_0000_0000 },
        { Msr.SysenterEip, 0x00FF_0000_0000_0000 },
        { Msr.Sfmask, 1UL << 32 },
        { Msr.TscAux, 1UL << 32 },
        { Msr.Pat, 0x0007_0406_0007_0402 },     // type 2 is reserved
        { Msr.Pat, 0x0007_0406_0007_0408 },     // bits 7:3 of an entry reserved
        { Msr.MtrrDefType, 0x100 },            // bit 8 reserved
        { Msr.MtrrDefType, 0x7 },              // type 7 (UC-) is not an MTRR type
        { Msr.MtrrPhysBase0, 0x106 },          // PHYSBASE bits 11:8 reserved
        { Msr.MtrrPhysBase0, 1UL << 40 },      // above MAXPHYADDR
        { Msr.MtrrPhysBase0 + 1, 0x801 },      // PHYSMASK bits 10:0 reserved
        { Msr.MtrrFix4K_C0000, 0x0300 },       // type 3
        { Msr.ApicBase, 0xFEE0_0801 },         // reserved bit 0
        { Msr.ApicBase, 0xFEE0_0C00 },         // EXTD without x2APIC support
        { Msr.Efer, 1UL << 2 },
    };

    [Theory, MemberData(nameof(Invalid))]
    public void Invalid_msr_access_is_gp(uint index, ulong value)
    {
        using var m = new SysMachine(0, _ => { });
        Gp(() => Interp.WriteMsr(m.Cpu, index, value));
    }

    [Fact]
    public void Read_only_and_unknown_msrs()
    {
        using var m = new SysMachine(0, _ => { });
        Assert.Equal(0x508UL, Interp.ReadMsr(m.Cpu, Msr.MtrrCap)); // VCNT 8, FIX, WC
        Assert.Equal(1UL, Interp.ReadMsr(m.Cpu, Msr.FeatureControl)); // locked, VMX off
        // IA32_ARCH_CAPABILITIES: RDCL_NO, IBRS_ALL, MDS_NO, TAA_NO, ..., BHI_NO, ..., ITS_NO; read-only.
        Assert.Equal(0x4000_0000_0D10_E17BUL, Interp.ReadMsr(m.Cpu, Msr.ArchCapabilities));
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.ArchCapabilities, 0));
        Gp(() => Interp.ReadMsr(m.Cpu, 0x1234_5678));
        Gp(() => Interp.ReadMsr(m.Cpu, 0x830));
        Gp(() => Interp.ReadMsr(m.Cpu, Msr.MtrrPhysBase0 + 16)); // only 8 variable pairs
    }

    [Fact]
    public void Apic_base_extd_allowed_with_x2apic()
    {
        using var m = new SysMachine(0, _ => { });
        m.Cpu.Cpuid.X2Apic = true;
        Interp.WriteMsr(m.Cpu, Msr.ApicBase, 0xFEE0_0C00);
        Assert.Equal(0xFEE0_0C00UL, m.S->ApicBase);
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.ApicBase, 0xFEE0_0400)); // EXTD without EN is invalid
    }

    [Fact]
    public void Tsc_write_sets_the_counter()
    {
        using var m = new SysMachine(0, _ => { });
        Interp.WriteMsr(m.Cpu, Msr.Tsc, 1UL << 50);
        ulong t = Interp.ReadMsr(m.Cpu, Msr.Tsc);
        Assert.InRange(t, 1UL << 50, (1UL << 50) + (ulong)System.Diagnostics.Stopwatch.Frequency * 10);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Hooks_own_msrs_first(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(ecx, 0x802);
            a.rdmsr();
            a.mov(r8, rax);
            a.mov(r9, rdx);
            a.mov(ecx, 0x80B);
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0x808);
            a.mov(eax, 0x10);
            a.wrmsr();
        });
        var written = new List<(uint, ulong)>();
        m.Cpu.MsrReadHook = idx => idx == 0x802 ? 0x1_0000_0007UL : null;
        m.Cpu.MsrWriteHook = (idx, v) =>
        {
            if (idx == 0x808) throw CpuFault.GP(); // the machine can refuse a write
            written.Add((idx, v));
            return idx is >= 0x800 and <= 0x8FF;
        };
        m.RunExpectFault(Vector.GP, LastWrmsr(m));
        Assert.Equal(7UL, m.Gpr(8));
        Assert.Equal(1UL, m.Gpr(9));
        Assert.Equal([(0x80Bu, 0UL), ], written);
    }

    /// <summary>Address of the program's last WRMSR (0F 30).</summary>
    static ulong LastWrmsr(SysMachine m)
    {
        var code = m.Mem(SysMachine.CodeAddr, 64);
        for (int k = code.Length - 2; k >= 0; k--)
            if (code[k] == 0x0F && code[k + 1] == 0x30) return SysMachine.CodeAddr + (ulong)k;
        return 0;
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Rdmsr_wrmsr_from_guest(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(ecx, Msr.Lstar);
            a.mov(eax, 0x8100_0000);
            a.mov(edx, 0xFFFF_FFFF);
            a.wrmsr();
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.rdmsr();
        });
        m.Gpr(0) = 0xAAAA_AAAA_0000_0000; // RDMSR clears the upper halves of RAX/RDX
        m.RunToHlt();
        Assert.Equal(0xFFFF_FFFF_8100_0000UL, m.S->Lstar);
        Assert.Equal(0x8100_0000UL, m.Gpr(0));
        Assert.Equal(0xFFFF_FFFFUL, m.Gpr(2));
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Wrmsr_fs_base_changes_fs_relative_loads(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(ecx, Msr.FsBase);
            a.mov(eax, (uint)SysMachine.DataAddr);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(rbx, __qword_ptr.fs[8]);
        });
        BitConverter.TryWriteBytes(m.Mem(SysMachine.DataAddr + 8, 8), 0x1122_3344_5566_7788UL);
        m.RunToHlt();
        Assert.Equal(0x1122_3344_5566_7788UL, m.Gpr(3));
    }

    static (uint A, uint B, uint C, uint D) Cpuid(CpuidModel model, uint leaf, uint sub = 0)
    {
        model.Query(leaf, sub, out uint a, out uint b, out uint c, out uint d);
        return (a, b, c, d);
    }

    [Theory, InlineData(0), InlineData(1)]
    public void Leaf1_and_leafB_report_the_machine_topology(int tier)
    {
        using var m = new SysMachine(tier, a =>
        {
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r8d, eax); a.mov(r9d, ebx); a.mov(r10d, ecx); a.mov(r11d, edx);
            a.mov(eax, 0xB);
            a.mov(ecx, 1);
            a.cpuid();
            a.mov(r12d, ebx); a.mov(r13d, edx);
        });
        m.Cpu.Cpuid.ApicId = 5;
        m.Cpu.Cpuid.LogicalProcessors = 6;
        m.Cpu.Cpuid.X2Apic = true;
        m.Cpu.Cpuid.Apic = true;
        m.RunToHlt();
        Assert.Equal(CpuidModel.Signature, (uint)m.Gpr(8));
        Assert.Equal(5u, (uint)m.Gpr(9) >> 24);             // initial APIC ID
        Assert.Equal(6u, ((uint)m.Gpr(9) >> 16) & 0xFF);    // logical processors
        Assert.NotEqual(0u, (uint)m.Gpr(10) & (1u << 21));  // x2APIC
        Assert.NotEqual(0u, (uint)m.Gpr(11) & (1u << 9));   // APIC
        Assert.NotEqual(0u, (uint)m.Gpr(11) & (1u << 28));  // HTT
        Assert.NotEqual(0u, (uint)m.Gpr(10) & (1u << 24));  // TSC-deadline timer, as KVM's in-kernel LAPIC reports it
        Assert.Equal(6u, (uint)m.Gpr(12));                  // leaf 0Bh core level: 6 logical processors
        Assert.Equal(5u, (uint)m.Gpr(13));                  // x2APIC ID

        var model = new CpuidModel { ApicId = 0, LogicalProcessors = 1 };
        var l1 = Cpuid(model, 1);
        Assert.Equal(0u, l1.C & ((1u << 21) | (1u << 24))); // no LAPIC: no x2APIC, no TSC-deadline timer
        Assert.Equal(0u, l1.D & ((1u << 9) | (1u << 28)));
        var b0 = Cpuid(model, 0xB, 0);
        Assert.Equal(0x100u, b0.C);  // level 0 is SMT
        Assert.Equal(1u, b0.B);
        Assert.Equal(0u, Cpuid(model, 0xB, 2).B); // no level 2: EBX = 0
    }

    [Fact]
    public void Feature_bits_match_what_is_implemented()
    {
        var model = new CpuidModel();
        var l1 = Cpuid(model, 1);
        // Leaf 1 EDX: FPU PSE TSC MSR PAE MCE CX8 SEP MTRR PGE CMOV PAT FXSR SSE SSE2.
        Assert.Equal(1u, l1.D & 1u);
        uint expected = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 11) | (1u << 12)
            | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 24) | (1u << 25) | (1u << 26);
        Assert.Equal(expected, l1.D);
        Assert.Equal(0u, l1.D & (1u << 23)); // no MMX
        // SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT; no MONITOR, no x2APIC by default
        Assert.Equal((1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23), l1.C);
        var e1 = Cpuid(model, 0x8000_0001);
        Assert.Equal((1u << 11) | (1u << 20) | (1u << 27) | (1u << 29), e1.D); // SYSCALL NX RDTSCP LM
        Assert.Equal(1u | (1u << 5), e1.C); // LAHF LZCNT
        Assert.Equal(1u << 3, Cpuid(model, 7).B); // BMI1
        // SERIALIZE, IBRS/IBPB, STIBP, ARCH_CAPABILITIES (the MSRs in Read_only_and_unknown_msrs and Speculation_control_msrs)
        Assert.Equal((1u << 14) | (1u << 26) | (1u << 27) | (1u << 29), Cpuid(model, 7).D);
        Assert.Equal(2u, Cpuid(model, 7).A); // subleaves 0-2
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(model, 7, 1));
        Assert.Equal((0u, 0u, 0u, 1u << 4), Cpuid(model, 7, 2)); // BHI_CTRL
        Assert.Equal((0u, 0u, 0u, 0u), Cpuid(model, 7, 3));
    }

    /// <summary>SERIALIZE (CPUID.7.EDX[14]), what Linux's sync_core() runs after patching code: it executes at CPL 3 and 0 in
    /// both tiers and ends its block as CPUID does, so bytes stored just before it into the code that follows run as
    /// stored.</summary>
    [Theory, InlineData(0, 64), InlineData(1, 64), InlineData(0, 32), InlineData(1, 32)]
    public void Serialize_runs_and_ends_its_block(int tier, int bitness)
    {
        using var m = new SysMachine(tier, a =>
        {
            // here: pop (1 byte), mov byte [xbx+9], 7 (4), serialize (3), then mov eax, 1 with its immediate at here+9
            var here = a.CreateLabel();
            a.call(here);
            a.Label(ref here);
            if (bitness == 64) { a.pop(rbx); a.mov(__byte_ptr[rbx + 9], 7); }
            else { a.pop(ebx); a.mov(__byte_ptr[ebx + 9], 7); }
            a.serialize();
            a.mov(eax, 1); // runs as mov eax, 7
            a.serialize();
        }, bitness);
        m.RunToHlt();
        Assert.Equal(7UL, m.Gpr(0));
        var decoded = Iced.Intel.Decoder.Create(64, new Iced.Intel.ByteArrayCodeReader(new byte[] { 0x0F, 0x01, 0xE8 }));
        Assert.True(DynaSmp.Jit.X86.X86Code.EndsBlock(decoded.Decode()));
    }

    /// <summary>IA32_SPEC_CTRL holds exactly the bits CPUID leaf 7 enumerates (IBRS, STIBP, BHI_DIS_S) and INIT clears it, as
    /// KVM's vCPU reset does; IA32_PRED_CMD takes IBPB and is write-only.</summary>
    [Fact]
    public void Speculation_control_msrs()
    {
        using var m = new SysMachine(0, _ => { });
        Assert.Equal(0UL, Interp.ReadMsr(m.Cpu, Msr.SpecCtrl));
        foreach (ulong bit in new[] { 1UL, 2UL, 1UL << 10 })
        {
            Interp.WriteMsr(m.Cpu, Msr.SpecCtrl, bit);
            Assert.Equal(bit, Interp.ReadMsr(m.Cpu, Msr.SpecCtrl));
        }
        Interp.WriteMsr(m.Cpu, Msr.SpecCtrl, 0x403);
        foreach (ulong reserved in new[] { 1UL << 2, 1UL << 3, 1UL << 9, 1UL << 11, 1UL << 63 })
        {
            Gp(() => Interp.WriteMsr(m.Cpu, Msr.SpecCtrl, 1 | reserved)); // SSBD (bit 2) is not enumerated
            Assert.Equal(0x403UL, Interp.ReadMsr(m.Cpu, Msr.SpecCtrl)); // unchanged by the failed write
        }
        m.Cpu.Reset(initEvent: true);
        Assert.Equal(0UL, Interp.ReadMsr(m.Cpu, Msr.SpecCtrl));

        Interp.WriteMsr(m.Cpu, Msr.PredCmd, 1); // IBPB
        Interp.WriteMsr(m.Cpu, Msr.PredCmd, 0);
        Gp(() => Interp.WriteMsr(m.Cpu, Msr.PredCmd, 2));
        Gp(() => Interp.ReadMsr(m.Cpu, Msr.PredCmd));
    }

    [Fact]
    public void Brand_string_and_cache_leaf()
    {
        var model = new CpuidModel();
        var bytes = new List<byte>();
        for (uint leaf = 0x8000_0002; leaf <= 0x8000_0004; leaf++)
        {
            var r = Cpuid(model, leaf);
            foreach (uint w in new[] { r.A, r.B, r.C, r.D }) bytes.AddRange(BitConverter.GetBytes(w));
        }
        Assert.Equal(48, bytes.Count);
        Assert.Equal("DynaSmp virtual CPU", Encoding.ASCII.GetString(bytes.ToArray()).TrimEnd('\0'));

        for (uint sub = 0; sub < 4; sub++)
        {
            var c = Cpuid(model, 4, sub);
            Assert.NotEqual(0u, c.A & 0x1F); // a cache
            Assert.Equal(63u, c.B & 0xFFF);  // 64-byte lines
        }
        Assert.Equal(0u, Cpuid(model, 4, 4).A & 0x1F); // type 0: no more caches
        var l1d = Cpuid(model, 4, 0);
        uint size = (((l1d.B >> 22) & 0x3FF) + 1) * (((l1d.B >> 12) & 0x3FF) + 1) * ((l1d.B & 0xFFF) + 1) * (l1d.C + 1);
        Assert.Equal(32u * 1024, size); // SDM CPUID leaf 4: ways * partitions * line size * sets
    }
}
