using System.Runtime.CompilerServices;


namespace DynaSmp.Jit.Interpreter;

/// <summary>Host atomics on guest RAM of any x86 operand size, for LOCK-prefixed instructions.</summary>
public static unsafe class Atomics
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(byte* p, int size) => size switch
    {
        1 => Volatile.Read(ref *p),
        2 => Volatile.Read(ref *(ushort*)p),
        4 => Volatile.Read(ref *(uint*)p),
        _ => Volatile.Read(ref *(ulong*)p),
    };

    /// <summary>Returns the value found at <paramref name="p"/>; stores <paramref name="value"/> if it equaled <paramref name="comparand"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(byte* p, int size, ulong value, ulong comparand) => size switch
    {
        1 => Interlocked.CompareExchange(ref *p, (byte)value, (byte)comparand),
        2 => Interlocked.CompareExchange(ref *(ushort*)p, (ushort)value, (ushort)comparand),
        4 => Interlocked.CompareExchange(ref *(uint*)p, (uint)value, (uint)comparand),
        _ => Interlocked.CompareExchange(ref *(ulong*)p, value, comparand),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Exchange(byte* p, int size, ulong value) => size switch
    {
        1 => Interlocked.Exchange(ref *p, (byte)value),
        2 => Interlocked.Exchange(ref *(ushort*)p, (ushort)value),
        4 => Interlocked.Exchange(ref *(uint*)p, (uint)value),
        _ => Interlocked.Exchange(ref *(ulong*)p, value),
    };
}
