namespace DynaSmp.Jit.Memory;

/// <summary>The kind of access a linear address is translated for (decides #PF error-code bits in paging).</summary>
public enum MemAccess { Read, Write, Execute }
