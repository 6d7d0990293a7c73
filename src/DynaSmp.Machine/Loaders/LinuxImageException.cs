namespace DynaSmp.Machine.Loaders;

/// <summary>The file cannot be booted with the Linux x86 boot protocol; the message says why in terms a user can act on.</summary>
public sealed class LinuxImageException(string message) : Exception(message);
