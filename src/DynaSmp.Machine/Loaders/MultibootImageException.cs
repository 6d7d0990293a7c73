namespace DynaSmp.Machine.Loaders;

/// <summary>The file cannot be booted as a Multiboot v1 kernel; the message says why in terms a user can act on.</summary>
public sealed class MultibootImageException : Exception
{
    public MultibootImageException(string message) : base(message) { }
}
