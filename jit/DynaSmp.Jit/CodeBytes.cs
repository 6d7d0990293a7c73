using Iced.Intel;

namespace DynaSmp.Jit;

/// <summary>Collects what Iced's Assembler or Encoder writes: how the project turns assembled guest code (built-in
/// guests, tests, benchmarks, native stubs) into bytes.</summary>
public sealed class CodeBytes : CodeWriter
{
    readonly List<byte> _bytes = new();

    public override void WriteByte(byte value) => _bytes.Add(value);

    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>Assembles <paramref name="a"/> for code placed at <paramref name="address"/>.</summary>
    public static byte[] Assemble(Assembler a, ulong address)
    {
        var w = new CodeBytes();
        a.Assemble(w, address);
        return w.ToArray();
    }
}
