using Iced.Intel;

namespace DynaSmp.Jit.X86;

/// <summary>Classes of mnemonics Iced has no predicate for, computed once from the SDM names.</summary>
public static class MnemonicClass
{
    /// <summary>Size of a table indexed by <see cref="Mnemonic"/>.</summary>
    public static readonly int Count = CountMnemonics();

    static int CountMnemonics()
    {
        int max = 0;
        foreach (var m in Enum.GetValues<Mnemonic>()) max = Math.Max(max, (int)m);
        return max + 1;
    }

    static readonly bool[] Cmov = Build("Cmov"), Set = Build("Set");

    static bool[] Build(string prefix)
    {
        var names = Enum.GetNames<Mnemonic>();
        var t = new bool[names.Length + 1];
        foreach (var m in Enum.GetValues<Mnemonic>())
        {
            string n = m.ToString();
            // Exactly the condition-code forms: CMOVcc / SETcc are the prefix plus 1-3 condition letters.
            t[(int)m] = n.StartsWith(prefix, StringComparison.Ordinal) && n.Length <= prefix.Length + 3 && n != "Setssbsy";
        }
        return t;
    }

    public static bool IsCmovcc(Mnemonic m) => Cmov[(int)m];
    public static bool IsSetcc(Mnemonic m) => Set[(int)m];

    /// <summary>SHL/SAL/SHR/SAR, ROL/ROR/RCL/RCR, SHLD/SHRD: the instructions whose flags depend on a masked count.</summary>
    public static bool IsShiftOrRotate(Mnemonic m) => m is Mnemonic.Shl or Mnemonic.Sal or Mnemonic.Shr or Mnemonic.Sar
        or Mnemonic.Rol or Mnemonic.Ror or Mnemonic.Rcl or Mnemonic.Rcr or Mnemonic.Shld or Mnemonic.Shrd;

    public static bool IsFarPointer(MemorySize m) => m is MemorySize.SegPtr16 or MemorySize.SegPtr32 or MemorySize.SegPtr64;
}
