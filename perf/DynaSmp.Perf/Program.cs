using BenchmarkDotNet.Running;

namespace DynaSmp.Perf;

public static class Program
{
    /// <summary>`gate` is the perf regression gate (Gate/GateCommand.cs). `quick` prints a one-shot Stopwatch table (seconds, for a first look); anything else goes to
    /// BenchmarkDotNet (the figures that count), e.g. `--filter '*GuestMips*'`.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gate") return Gate.GateCommand.Run(args[1..]);
        if (args.Length > 0 && args[0] == "quick") { QuickLook.Run(); return 0; }
        if (args.Length > 0 && args[0] == "quick-compile") { SyntheticCompile.Run(); CompileCostQuick.Run(); return 0; }
        if (args.Length > 0 && args[0] == "quick-paging") { PagingCost.Quick(); return 0; }
        if (args.Length > 0 && args[0] == "quick-machine") { Machine.MachineQuick.Run(); return 0; }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
