using System.Runtime.InteropServices;

namespace DynaSmp.Perf;

/// <summary>Machine code in an executable host page, to run the guest loops natively for comparison.</summary>
public sealed unsafe partial class NativeCode : IDisposable
{
    readonly void* _page;
    readonly nuint _size;
    public delegate* unmanaged<ulong, ulong, ulong> Entry { get; }

    public NativeCode(byte[] code)
    {
        _size = (nuint)((code.Length + 4095) & ~4095);
        _page = Mmap(null, _size, 7 /* RWX */, 0x22 /* PRIVATE|ANON */, -1, 0);
        if (_page == (void*)-1) throw new InvalidOperationException("mmap failed");
        code.CopyTo(new Span<byte>(_page, code.Length));
        Entry = (delegate* unmanaged<ulong, ulong, ulong>)_page;
    }

    public void Dispose() => Munmap(_page, _size);

    [LibraryImport("libc", EntryPoint = "mmap")]
    private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* addr, nuint length);
}
