using System.Text;

namespace DynaSmp.Tests.Platform;

/// <summary>A minimal initramfs (the kernel's "newc" cpio format, uncompressed, which every kernel unpacks) built in
/// memory, so the real-kernel test needs only a static busybox binary, not cpio or root.</summary>
public sealed class Initramfs
{
    readonly MemoryStream _out = new();
    int _inode = 1;

    const int Directory = 0x4000, Regular = 0x8000, Symlink = 0xA000, CharDevice = 0x2000;

    public Initramfs Dir(string path) { Entry(path, Directory | 0x1ED, []); return this; }
    public Initramfs File(string path, byte[] data, bool executable = false) { Entry(path, Regular | (executable ? 0x1ED : 0x1A4), data); return this; }
    public Initramfs Link(string path, string target) { Entry(path, Symlink | 0x1FF, Encoding.ASCII.GetBytes(target)); return this; }
    public Initramfs Device(string path, int major, int minor) { Entry(path, CharDevice | 0x180, [], major, minor); return this; }

    /// <summary>The archive with its TRAILER!!! entry.</summary>
    public byte[] Build()
    {
        Entry("TRAILER!!!", 0, []);
        return _out.ToArray();
    }

    void Entry(string name, int mode, byte[] data, int rdevMajor = 0, int rdevMinor = 0)
    {
        byte[] nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
        var header = new StringBuilder("070701");
        foreach (int field in new[] { _inode++, mode, 0, 0, 1, 0, data.Length, 0, 0, rdevMajor, rdevMinor, nameBytes.Length, 0 })
            header.Append(field.ToString("X8"));
        Write(Encoding.ASCII.GetBytes(header.ToString()));
        Write(nameBytes);
        Pad();
        Write(data);
        Pad();
    }

    void Write(byte[] b) => _out.Write(b);

    void Pad() { while (_out.Length % 4 != 0) _out.WriteByte(0); }
}
