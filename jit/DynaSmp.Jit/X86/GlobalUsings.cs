// The x86 operand facts (X86Operands) and mnemonic classes are vocabulary for every part of the CPU: both tiers call
// them unqualified, as they did when they were the interpreter's own members.
global using static DynaSmp.Jit.X86.X86Operands;
global using DynaSmp.Jit.X86;
