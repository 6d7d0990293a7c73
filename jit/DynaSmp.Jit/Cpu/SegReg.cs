namespace DynaSmp.Jit.Cpu;

/// <summary>Segment register numbers in the order x86 encodes them (ModRM.reg of MOV Sreg).</summary>
public enum SegReg { Es = 0, Cs = 1, Ss = 2, Ds = 3, Fs = 4, Gs = 5, Ldtr = 6, Tr = 7 }
