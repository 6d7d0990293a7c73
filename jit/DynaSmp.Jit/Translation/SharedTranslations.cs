using System.Collections.Concurrent;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;

namespace DynaSmp.Jit.Translation;

/// <summary>
/// Tier-1 code for one region of decoded instructions, independent of any VM: it takes the vCPU as arguments,
/// reaches its tier-0 fallbacks through handles to the instruction arrays, and its direct exits through the entering
/// block's own slot array (CpuState.ExitSlots). So every VM whose region decodes to the same instructions runs
/// the same method (<see cref="SharedTranslations"/>).
/// </summary>
public sealed class SharedCode
{
    readonly DynamicMethod _method; // keeps the code alive
    readonly GCHandle[] _handles;
    public BlockFn Delegate { get; }
    /// <summary>The method's code address for chained calls (0 when function pointers are unavailable or chaining is off).</summary>
    public nint Entry { get; }
    /// <summary>Direct exits that own a slot.</summary>
    public int ExitSlots { get; }
    public int RegionBlocks { get; }
    /// <summary>Size of the method's IL: what RyuJIT's time grows with (the tier-up profile reports it).</summary>
    public int IlBytes { get; }
    /// <summary>A lean region that counts its entries and asks to be promoted (BlockEmitter.EmitEntryCountdown).</summary>
    public bool Counted { get; }

    internal SharedCode(DynamicMethod method, BlockFn fn, nint entry, int exitSlots, GCHandle[] handles, int regionBlocks, int ilBytes, bool counted)
    {
        _method = method; Delegate = fn; Entry = entry; ExitSlots = exitSlots; _handles = handles; RegionBlocks = regionBlocks; IlBytes = ilBytes; Counted = counted;
    }

    // The handles keep only instruction arrays alive (no cycle back here), so the code and its handles go together
    // once no VM's block and no table entry refers to it.
    ~SharedCode()
    {
        foreach (var h in _handles) if (h.IsAllocated) h.Free();
    }
}

/// <summary>
/// Process-wide table of tier-1 code keyed by what the emitter's output depends on: the mode, CS base, the options
/// that change emission, and every region member's RIP and decoded instructions (bit for bit). 64 VMs booting the same
/// guest compile each hot region once instead of 64 times. Bounded: past <see cref="Capacity"/> entries the table
/// starts over (code in use stays alive through the blocks that use it).
/// </summary>
public static class SharedTranslations
{
    public const int Capacity = 4096;
    static readonly ConcurrentDictionary<Key, SharedCode> Table = new();
    static int _adds;

    /// <summary>Off (DYNASMP_SHARED_TRANSLATIONS=0): every VM compiles its own code, for A/B measurements.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("DYNASMP_SHARED_TRANSLATIONS") != "0";

    /// <summary>Which address spaces (VMs, or earlier runs in this process) compiled what the table holds.</summary>
    internal static readonly TranslationContributors Contributors = new();

    internal static SharedCode GetOrCompile(BlockCache cache, Block[] region, bool chain, bool bounded, bool counted, Func<SharedCode> compile)
    {
        if (!Enabled) return compile();
        var key = Key.Of(region, chain, bounded, counted);
        if (Table.TryGetValue(key, out var code)) return code;
        code = compile();
        // Adds since the last clear, not ConcurrentDictionary.Count, which takes every lock of the table (1.1% of the
        // compile thread in a Debian boot).
        if (Interlocked.Increment(ref _adds) > Capacity) { Table.Clear(); Interlocked.Exchange(ref _adds, 1); }
        Contributors.Note(cache.Id);
        return Table.GetOrAdd(key, code);
    }

    /// <summary>The method some VM already compiled from these instructions, or null; nothing is compiled on a miss.</summary>
    internal static SharedCode? Find(Block[] region, bool chain, bool bounded, bool counted) =>
        Enabled && Table.TryGetValue(Key.Of(region, chain, bounded, counted), out var code) ? code : null;

    /// <summary>The bytes of every member's decoded instructions (Iced's Instruction is plain data, written whole by
    /// the decoder) after a header; compared in full, hashed once.</summary>
    readonly struct Key : IEquatable<Key>
    {
        readonly byte[] _bytes;
        readonly int _hash;

        Key(byte[] bytes)
        {
            _bytes = bytes;
            var h = new HashCode();
            h.AddBytes(bytes);
            _hash = h.ToHashCode();
        }

        public static Key Of(Block[] region, bool chain, bool bounded, bool counted)
        {
            int size = 16;
            foreach (var b in region) size += 12 + b.Insns.Length * Unsafe.SizeOf<Instruction>();
            var bytes = new byte[size];
            var span = bytes.AsSpan();
            var head = region[0];
            BitConverter.TryWriteBytes(span, (int)head.Mode);
            BitConverter.TryWriteBytes(span[4..], head.CsBase);
            span[12] = (byte)((chain ? 1 : 0) | (bounded ? 2 : 0) | (BlockEmitter.IsSegmented(head) ? 4 : 0) | (counted ? 8 : 0));
            span[13] = (byte)region.Length;
            int at = 16;
            foreach (var b in region)
            {
                BitConverter.TryWriteBytes(span[at..], b.Rip);
                // The read profile picks how 64-bit reads are emitted (Block.WindowFirst): code of the other kind is
                // correct but slower, so a VM takes only what its own profile would have compiled.
                BitConverter.TryWriteBytes(span[(at + 8)..], b.Insns.Length | (b.WindowFirst ? 1 << 30 : 0));
                at += 12;
                var insnBytes = MemoryMarshal.AsBytes(b.Insns.AsSpan());
                insnBytes.CopyTo(span[at..]);
                at += insnBytes.Length;
            }
            return new Key(bytes);
        }

        public bool Equals(Key other) => _hash == other._hash && _bytes.AsSpan().SequenceEqual(other._bytes);
        public override bool Equals(object? obj) => obj is Key k && Equals(k);
        public override int GetHashCode() => _hash;
    }
}

/// <summary>Whether the shared table can hold code that another address space compiled. Until a second one contributes,
/// a VM's early probe (<see cref="TierUp.AdoptShared"/>) can only find its own code, which its blocks already hold.</summary>
/// <remarks>PERF: a single Debian VM at --smp 4 spent 4.5% of its vCPU threads' samples in probes that never hit (forming
/// each block's region and hashing its instructions at the 32nd interpretation).</remarks>
internal sealed class TranslationContributors
{
    int _sole; // the one contributor's cache id so far, 0 before any
    volatile bool _many;

    public void Note(int cacheId)
    {
        if (_many) return;
        int sole = Interlocked.CompareExchange(ref _sole, cacheId, 0);
        if (sole != 0 && sole != cacheId) _many = true;
    }

    /// <summary>True once any other cache than <paramref name="cacheId"/> has contributed.</summary>
    public bool HoldsOthersThan(int cacheId)
    {
        if (_many) return true;
        int sole = Volatile.Read(ref _sole);
        return sole != 0 && sole != cacheId;
    }
}
