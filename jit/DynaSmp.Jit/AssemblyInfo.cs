// PERF: no zeroing of locals and stackalloc buffers on the execution paths (page walks, interpreter);
// C# definite assignment still guarantees every local is written before it is read.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
