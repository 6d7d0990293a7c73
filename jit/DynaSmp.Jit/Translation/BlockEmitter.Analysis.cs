using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Instructions;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

// Which instructions a region lowers inline, the registers they use and the flags live after each.
sealed unsafe partial class BlockEmitter
{
    /// <summary>Decides which instructions are lowered inline, which registers they use, and flag liveness.</summary>
    void Analyse(int bi)
    {
        var b = _blocks[bi];
        var insns = b.Insns;
        bool is64 = (b.Mode & ExecMode.SizeMask) == ExecMode.Code64;
        var native = _native[bi] = new bool[insns.Length];
        var liveAfter = _live[bi] = new uint[insns.Length];
        for (int k = 0; k < insns.Length; k++)
        {
            ref readonly var i = ref insns[k];
            native[k] = (is64 || (_segmented ? SegmentedLowerable(i) : FlatLowerable(i))) && InstEmit.CanEmit(i, _stackAddr);
            if (!native[k]) continue;
            if (_legacy)
            {
                if (InstEmit.HasMemory(i) && !InstEmit.NeverAccessesMemory(i)) _segsUsed |= 1 << (int)X86Operands.SegOf(i.MemorySegment);
                if (InstEmit.IsStringOp(i)) _segsUsed |= 1 << (int)SegReg.Es | 1 << (int)X86Operands.SegOf(i.MemorySegment);
                if (i.StackPointerIncrement != 0 || i.Mnemonic is Mnemonic.Leave or Mnemonic.Enter) _segsUsed |= 1 << (int)SegReg.Ss;
            }
            // Every GPR the instruction reads or writes, implicit ones included (MUL's EDX, LEAVE's EBP, XCHG's second operand).
            foreach (var u in _info.GetInfo(i).GetUsedRegisters())
                if (u.Register.IsGPR())
                    Use(u.Register, write: u.Access is OpAccess.Write or OpAccess.ReadWrite or OpAccess.CondWrite or OpAccess.ReadCondWrite);
            if (i.StackPointerIncrement != 0) { _used[4] = true; _written[4] = true; }
        }
        // Backward pass: a flag is live after k if some later instruction reads it before all writers.
        // Block ends (and tier-0 calls) count as reading every flag.
        const uint all = (uint)(RflagsBits.OF | RflagsBits.SF | RflagsBits.ZF | RflagsBits.AF | RflagsBits.CF | RflagsBits.PF);
        uint live = all;
        for (int k = insns.Length - 1; k >= 0; k--)
        {
            liveAfter[k] = live;
            ref readonly var i = ref insns[k];
            // An instruction that can fault must find the flags of before it in CpuState when it does (precise
            // exceptions), so it keeps every flag live up to it; recording them costs three local moves.
            live = native[k] ? (live & ~Kills(i)) | (uint)i.RflagsRead | (CanFault(i) ? all : 0) : all;
        }
    }

    /// <summary>Lowered instructions that may raise an exception: memory and stack accesses (LEAVE reads the stack
    /// through RBP), DIV/IDIV (#DE), and the SSE and x87 forms, whose tier-0 path raises #NM, #UD, #XM or #MF.</summary>
    static bool CanFault(in Instruction i) =>
        (InstEmit.HasMemory(i) && !InstEmit.NeverAccessesMemory(i)) || InstEmit.IsStringOp(i) || i.StackPointerIncrement != 0
        || i.Mnemonic is Mnemonic.Div or Mnemonic.Idiv or Mnemonic.Leave || InstEmit.IsSseLowered(i.Mnemonic)
        || InstEmit.IsX87Lowered(i.Mnemonic);

    /// <summary>Flags an instruction always overwrites. A shift or rotate by CL writes none when CL masks to 0, so it
    /// kills nothing: the flags before it stay live through it.</summary>
    static uint Kills(in Instruction i)
    {
        if (!X86.MnemonicClass.IsShiftOrRotate(i.Mnemonic)) return (uint)i.RflagsModified;
        if (i.GetOpKind(i.OpCount - 1) == OpKind.Register) return 0; // by CL
        return InstEmit.MaskedImmediateCount(i) == 0 ? 0 : (uint)i.RflagsModified;
    }

    /// <summary>What flat 32-bit lowering leaves to tier 0 beyond the table's own form checks: CS-relative data
    /// (an execute-only code segment may not be read, and the entry check only vouches for data segments).</summary>
    static bool FlatLowerable(in Instruction i) => !(InstEmit.HasMemory(i) && i.MemorySegment == Register.CS);

    /// <summary>What segmented lowering leaves to tier 0: CS-relative data outside real mode (as flat), and the forms
    /// whose accesses do not go through one limit-checked offset (strings, which step two indexes; a memory BT* with a
    /// register bit offset, which moves the address; SSE memory operands, read as two halves).</summary>
    bool SegmentedLowerable(in Instruction i)
    {
        bool mem = InstEmit.HasMemory(i);
        if (mem && i.MemorySegment == Register.CS && !_real) return false;
        if (InstEmit.IsStringOp(i) || (mem && InstEmit.IsSseLowered(i.Mnemonic))) return false;
        return !(i.Mnemonic is Mnemonic.Bt or Mnemonic.Bts or Mnemonic.Btr or Mnemonic.Btc && i.Op0Kind == OpKind.Memory && i.Op1Kind == OpKind.Register);
    }


    /// <summary>Whether some member ends in a direct branch to itself or an earlier member.</summary>
    bool HasBackEdge()
    {
        for (int n = 0; n < _blocks.Length; n++)
        {
            ref readonly var last = ref _blocks[n].Insns[^1];
            if (last.FlowControl is not (FlowControl.ConditionalBranch or FlowControl.UnconditionalBranch)) continue;
            if (last.Op0Kind is not (OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)) continue;
            int m = RegionIndex(last.NearBranchTarget);
            if (m >= 0 && m <= n) return true;
        }
        return false;
    }

    void Use(Register r, bool write)
    {
        int idx = X86Operands.GprIndex(r, out _);
        if ((uint)idx >= 16) return;
        _used[idx] = true;
        if (write) _written[idx] = true;
    }

    internal bool FlagsLiveAfter => _live[_bi][_k] != 0;
    internal bool CfLiveAfter => (_live[_bi][_k] & (uint)RflagsBits.CF) != 0;
}
