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
    /// <summary>INC: CF is kept in Rflags.</summary>
    Inc,
    /// <summary>DEC: CF is kept in Rflags.</summary>
    Dec,
}
