using DynaSmp.Machine.Loaders;

namespace DynaSmp.Machine;

/// <summary>A VM with the PC devices wired up: what `dynasmp run` and `dynasmp boot` create.</summary>
public sealed class Pc : IDisposable
{
    public Vm Vm { get; }
    public PcDevices Devices { get; }

    public Pc(VmConfig config, Action<byte>? serialSink = null)
    {
        config.Validate();
        Devices = new PcDevices(config.Vcpus, config.MemoryBytes, serialSink);
        Vm = new Vm(config, Devices);
        // isa-debug-exit stops the VM with QEMU's status; the event runs on the writing vCPU's thread.
        Devices.DebugExit.ExitRequested += status => Vm.Stop(VmExitKind.DebugExit, $"isa-debug-exit status {status}", status);
        Devices.Attach(Vm);
        Devices.AcpiPm.PowerOff = () => Vm.Stop(VmExitKind.PowerOff, "the guest powered off (ACPI S5)", 0);
        Devices.PciHost.ResetRequested = () => Vm.Stop(VmExitKind.Reset, "the guest reset the machine (port 0xCF9)");
        Devices.SystemControl.ResetRequested = () => Vm.Stop(VmExitKind.Reset, "the guest reset the machine (port 0x92 or 0x64)");
    }

    /// <summary>Loads a multiboot v1 kernel and puts the BSP in the multiboot machine state (32-bit flat
    /// protected mode, paging off, EAX = magic, EBX = info). Throws MultibootImageException for bad images.</summary>
    public MultibootLoadPlan LoadMultiboot(ReadOnlyMemory<byte> image, string commandLine = "")
    {
        var plan = MultibootLoader.Plan(image, Vm.Config.MemoryBytes, commandLine);
        var boot = plan.Apply(Vm.Ram);
        var bsp = Vm.Vcpus[Vm.Config.BspId].Core;
        bsp.SetFlat32(boot.Eip, 0);
        bsp.Gpr(0) = boot.Eax;
        bsp.Gpr(3) = boot.Ebx;
        bsp.ExceptionIntercept = 0; // a real machine: exceptions go through the guest's IDT (or triple-fault)
        return plan;
    }

    /// <summary>Loads an opened bzImage (<see cref="LinuxKernel.Open"/>: its payload decompressed on the host when it can
    /// be) with the Linux boot protocol, plus ACPI and MP tables, and puts the BSP at its entry. Throws
    /// LinuxImageException for bad images or ones that do not fit.</summary>
    public LinuxBootPlan LoadLinux(LinuxKernel kernel, ReadOnlyMemory<byte> initrd, string commandLine = "") =>
        LoadLinux(LinuxBootLoader.Plan(kernel, Vm.Config.MemoryBytes, commandLine, initrd));

    /// <summary>Applies a plan made for this VM's RAM size: a fleet of equal VMs plans once and applies it to each.</summary>
    public LinuxBootPlan LoadLinux(LinuxBootPlan plan)
    {
        plan.Apply(Vm.Ram, Vm.Vcpus[Vm.Config.BspId].Core, Vm.Config.Vcpus);
        return plan;
    }

    /// <summary>A bzImage: the boot sector signature and the "HdrS" setup header magic.</summary>
    public static bool IsLinuxImage(ReadOnlySpan<byte> image) =>
        image.Length > 0x206 && image[0x1FE] == 0x55 && image[0x1FF] == 0xAA && image[0x202] == (byte)'H' && image[0x203] == (byte)'d' && image[0x204] == (byte)'r' && image[0x205] == (byte)'S';

    /// <summary>vCPU threads first (they call into the devices), then the device-timer thread (it kicks vCPUs,
    /// so it must end before their state is freed), then the vCPUs' memory.</summary>
    public void Dispose()
    {
        Vm.Join();
        Devices.Dispose();
        Vm.Dispose();
    }
}
