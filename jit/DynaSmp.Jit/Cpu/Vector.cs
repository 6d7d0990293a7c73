namespace DynaSmp.Jit.Cpu;

/// <summary>Architectural exception vectors (Intel SDM Table 6-1).</summary>
public static class Vector
{
    public const int DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8,
        TS = 10, NP = 11, SS = 12, GP = 13, PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;

    public static bool HasErrorCode(int v) => v is DF or TS or NP or SS or GP or PF or AC;

    public static string Name(int v) => v switch
    {
        DE => "#DE", DB => "#DB", NMI => "NMI", BP => "#BP", OF => "#OF", BR => "#BR", UD => "#UD",
        NM => "#NM", DF => "#DF", TS => "#TS", NP => "#NP", SS => "#SS", GP => "#GP", PF => "#PF",
        MF => "#MF", AC => "#AC", MC => "#MC", XM => "#XM", _ => $"vector {v}",
    };
}
