namespace DynaSmp.Machine.Loaders;

public enum MultibootImageFormat
{
    /// <summary>Loaded from the ELF32 program headers (PT_LOAD, at p_paddr).</summary>
    Elf32,
    /// <summary>Loaded from the header's address fields (flags bit 16, the "a.out kludge").</summary>
    AoutKludge,
}
