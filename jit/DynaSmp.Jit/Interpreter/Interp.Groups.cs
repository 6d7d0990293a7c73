using Iced.Intel;

namespace DynaSmp.Jit.Interpreter;

public static unsafe partial class Interp
{
    const int GroupCount = 12;

    /// <summary>Per mnemonic, the group (1-based, 0 = not seen yet) that last executed it. A tier-0 call from compiled
    /// code (x87, most SSE) used to walk the whole chain below; fpprint's FMUL passed eleven groups before its own.
    /// Races are benign (a byte store; a stale entry only costs one extra try).</summary>
    static readonly byte[] s_groupOf = new byte[MnemonicClass.Count];

    /// <summary>Instruction groups that live in their own files (one file per group, each owning its
    /// own switch). Returns false when no group implements the instruction: the caller raises #UD.</summary>
    /// <remarks>A group returns false without side effects for what it does not own, and no two groups own the same
    /// form, so trying the remembered group first gives the chain's answer. The legacy group, last in the chain, is
    /// never remembered: it may own forms of a mnemonic that an earlier group owns too.</remarks>
    static bool TryExecuteGroup(CpuCore c, in Instruction i)
    {
        int m = (int)i.Mnemonic;
        int known = s_groupOf[m];
        if (known != 0 && TryGroup(known, c, i)) return true;
        for (int g = 1; g <= GroupCount; g++)
        {
            if (g == known || !TryGroup(g, c, i)) continue;
            s_groupOf[m] = (byte)g;
            return true;
        }
        return TryExecuteLegacy(c, i);
    }

    static bool TryGroup(int g, CpuCore c, in Instruction i) => g switch
    {
        1 => TryExecuteShift(c, i),
        2 => TryExecuteMulDiv(c, i),
        3 => TryExecuteBits(c, i),
        4 => TryExecuteString(c, i),
        5 => TryExecuteExchange(c, i),
        6 => TryExecuteBcd(c, i),
        7 => TryExecuteSse(c, i),
        8 => TryExecuteSegments(c, i),
        9 => TryExecuteFarTransfer(c, i),
        10 => TryExecuteSyscall(c, i),
        11 => TryExecuteSystem(c, i),
        12 => TryExecuteX87(c, i),
        _ => false,
    };
}
