using DynaSmp.Machine;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace DynaSmp.Tests.Platform;

/// <summary>A guest takes a device interrupt the way an OS does: the 16550's THRE interrupt on ISA IRQ 4 goes
/// through the IOAPIC redirection entry the guest programmed to its LAPIC, into its IDT handler, which
/// acknowledges the UART (IIR read) and the LAPIC (EOI).</summary>
public class DeviceInterruptGuestTests
{
    const ulong Code = 0x10_0000, Gdt = 0x5000, Gdtr = 0x5100, Idt = 0x6000, Idtr = 0x5110, Flag = 0x9000, Stack = 0x8_0000;
    const byte Vector = 0x40;


    sealed class Writer : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Uart_interrupt_reaches_the_guest_handler_through_ioapic_and_lapic(bool levelTriggered)
    {
        using var pc = new Pc(new VmConfig { Vcpus = 2, MemoryBytes = 16UL << 20, Trace = false });
        var a = new Assembler(64);
        Label handler = a.CreateLabel(), wait = a.CreateLabel(), done = a.CreateLabel();
        a.lgdt(__[Gdtr]);
        a.lidt(__[Idtr]);
        a.mov(rdi, 0xFEE0_0000UL);
        a.mov(__dword_ptr[rdi + 0xF0], 0x1FF);            // LAPIC software enable
        a.mov(rsi, 0xFEC0_0000UL);
        a.mov(__dword_ptr[rsi], 0x18);                     // IOREDTBL4 low
        a.mov(__dword_ptr[rsi + 0x10], Vector | (levelTriggered ? 0x8000 : 0));
        a.mov(__dword_ptr[rsi], 0x19);                     // IOREDTBL4 high: physical APIC ID 0
        a.mov(__dword_ptr[rsi + 0x10], 0);
        a.mov(edx, 0x3F9);
        a.mov(al, 0x02);                                   // IER: THR-empty interrupt
        a.@out(dx, al);
        // Wait without a lost wake-up: test the flag with interrupts off, then STI; HLT (STI's shadow covers HLT).
        a.Label(ref wait);
        a.cli();
        a.cmp(__dword_ptr[Flag], 0);
        a.jne(done);
        a.sti();
        a.hlt();
        a.jmp(wait);
        a.Label(ref done);
        a.mov(eax, __dword_ptr[Flag]);
        a.mov(edx, 0xF4);
        a.@out(dx, al);
        a.hlt();
        a.Label(ref handler);
        a.mov(edx, 0x3FA);
        a.@in(al, dx);                                     // IIR: reports THRE and acknowledges it (line falls)
        a.mov(__byte_ptr[Flag + 4], al);
        a.mov(rax, 0xFEE0_0000UL);
        a.mov(ecx, __dword_ptr[rax + 0x180 + 0x20]);       // TMR bits 32-63 (vector 0x40 is bit 0 of them)
        a.mov(__dword_ptr[Flag + 8], ecx);
        a.mov(__dword_ptr[rax + 0xB0], 0);                 // LAPIC EOI (broadcast to the IOAPIC if level)
        a.mov(__dword_ptr[Flag], 0x21);
        a.iretq();
        var w = new Writer();
        var assembled = a.Assemble(w, Code, BlockEncoderOptions.ReturnNewInstructionOffsets);
        var code = w.Bytes.ToArray();
        ulong handlerAddress = assembled.GetLabelRIP(handler);

        var ram = pc.Vm.Ram;
        ram.Write(Code, code);
        Span<byte> gdt = stackalloc byte[24];
        BitConverter.TryWriteBytes(gdt[8..], 0x00AF_9A00_0000_FFFFUL);
        BitConverter.TryWriteBytes(gdt[16..], 0x00CF_9200_0000_FFFFUL);
        ram.Write(Gdt, gdt);
        Span<byte> gdtr = stackalloc byte[10];
        BitConverter.TryWriteBytes(gdtr, (ushort)23); BitConverter.TryWriteBytes(gdtr[2..], Gdt);
        ram.Write(Gdtr, gdtr);
        Span<byte> gate = stackalloc byte[16];
        BitConverter.TryWriteBytes(gate, (ushort)handlerAddress);
        BitConverter.TryWriteBytes(gate[2..], (ushort)0x08);
        gate[5] = 0x8E;                                    // present, DPL 0, 64-bit interrupt gate
        BitConverter.TryWriteBytes(gate[6..], (ushort)(handlerAddress >> 16));
        BitConverter.TryWriteBytes(gate[8..], (uint)(handlerAddress >> 32));
        ram.Write(Idt + Vector * 16UL, gate);
        Span<byte> idtr = stackalloc byte[10];
        BitConverter.TryWriteBytes(idtr, (ushort)(256 * 16 - 1)); BitConverter.TryWriteBytes(idtr[2..], Idt);
        ram.Write(Idtr, idtr);

        var bsp = pc.Vm.Vcpus[0].Core;
        bsp.SetFlat64(Code, Stack);
        bsp.ExceptionIntercept = 0;
        pc.Vm.Start();
        Assert.True(pc.Vm.WaitForExit(TimeSpan.FromSeconds(5)), $"the guest never took the interrupt: entry 0x{pc.Devices.IoApic.RedirectionEntry(4):x} irr 0x{pc.Vm.Vcpus[0].Apic.ReadRegister(0x220):x} isr 0x{pc.Vm.Vcpus[0].Apic.ReadRegister(0x120):x} svr 0x{pc.Vm.Vcpus[0].Apic.ReadRegister(0xF0):x} {pc.Vm.Vcpus[0].MpState} ier {pc.Devices.Serial.PortRead(0x3F9, 1)}");
        pc.Vm.Join();
        Assert.True(pc.Vm.ExitKind == VmExitKind.DebugExit, $"{pc.Vm.ExitKind}: {pc.Vm.ExitMessage} {pc.Vm.Diagnosis?.Format()}");
        Assert.Equal((0x21 << 1) | 1, pc.Vm.ExitStatus);
        Assert.Equal(0x02, ram.Span(Flag + 4, 1)[0]);      // the handler saw the THRE interrupt in IIR
        uint tmr = BitConverter.ToUInt32(ram.Span(Flag + 8, 4));
        Assert.Equal(levelTriggered ? 1u : 0u, tmr & 1);   // a level message sets the LAPIC's TMR bit
        // Remote IRR was cleared by the EOI broadcast (level) or never set (edge).
        Assert.Equal(0UL, pc.Devices.IoApic.RedirectionEntry(4) & 1UL << 14);
    }
}
