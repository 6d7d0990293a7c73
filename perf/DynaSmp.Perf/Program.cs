using BenchmarkDotNet.Running;

namespace DynaSmp.Perf;

public static class Program
{
    /// <summary>`quick` prints a one-shot Stopwatch table (seconds, for a first look); anything else goes to
    /// BenchmarkDotNet (the figures that count), e.g. `--filter '*GuestMips*'`.</summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick") { QuickLook.Run(); return; }
        if (args.Length > 0 && args[0] == "quick-paging") { PagingCost.Quick(); return; }
        if (args.Length > 0 && args[0] == "quick-machine") { Machine.MachineQuick.Run(); return; }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
