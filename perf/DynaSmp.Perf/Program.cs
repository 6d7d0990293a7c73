using BenchmarkDotNet.Running;

namespace DynaSmp.Perf;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
