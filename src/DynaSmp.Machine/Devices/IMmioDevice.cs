namespace DynaSmp.Machine.Devices;

/// <summary>
/// A device in guest-physical address space. <see cref="MmioMap"/> hands it every access that starts inside its
/// range, with <paramref name="offset"/> relative to the range's base; <paramref name="size"/> is 1, 2, 4 or 8.
/// </summary>
public interface IMmioDevice
{
    ulong MmioRead(ulong offset, int size);

    void MmioWrite(ulong offset, int size, ulong value);
}
