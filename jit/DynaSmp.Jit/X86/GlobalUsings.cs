// The x86 facts of a decoded instruction (X86Operands, X86Code) and the mnemonic classes are vocabulary for every part
// of the CPU: the decoder, both tiers and the dispatcher call them unqualified, as they did when they were the
// interpreter's and CpuCore's own members.
global using static DynaSmp.Jit.X86.X86Operands;
global using static DynaSmp.Jit.X86.X86Code;
global using DynaSmp.Jit.X86;
