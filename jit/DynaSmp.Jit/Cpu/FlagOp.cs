namespace DynaSmp.Jit.Cpu;

/// <summary>The last flag-producing operation, recorded instead of computing RFLAGS eagerly.</summary>
public enum FlagOp
{
    /// <summary>Status flags are materialised in CpuState.Rflags.</summary>
    None = 0,
    Add,
    /// <summary>ADC with carry-in set.</summary>
    Adc1,
    Sub,
    /// <summary>SBB with borrow-in set.</summary>
    Sbb1,
    /// <summary>AND/OR/XOR/TEST: CF = OF = 0.</summary>
    Logic,
    /// <summary>INC: FlagSrc2 holds the CF it keeps.</summary>
    Inc,
    /// <summary>DEC: FlagSrc2 holds the CF it keeps.</summary>
    Dec,
    /// <summary>A shift/rotate whose CF and OF were computed eagerly: FlagSrc1 = CF, FlagSrc2 = OF (0 or 1);
    /// ZF/SF/PF come from the result and AF is 0.</summary>
    Shift,
}
