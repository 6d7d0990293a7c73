using DynaSmp.Jit.Cpu;
using DynaSmp.Jit.Interpreter;
using DynaSmp.Jit.Memory;

namespace DynaSmp.Jit;

/// <summary>Interrupt and exception delivery (Intel SDM Vol. 3A chapter 6): real-mode IVT, protected-mode
/// and long-mode IDT with privilege-changing stack switches, #DF combination and triple fault.</summary>
public sealed unsafe partial class CpuCore
{
    /// <summary>Vectors whose exceptions are reported to the caller of Run instead of being delivered to the
    /// guest, as KVM's exception bitmap (KVM_SET_GUEST_DEBUG) does. Bit n = vector n.</summary>
    public uint ExceptionIntercept { get; set; }

    /// <summary>The machine's interrupt controller; null means no INTR source.</summary>
    public IInterruptController? InterruptController { get; set; }

    /// <summary>Thrown when delivering #DF faults: the CPU shuts down.</summary>
    sealed class TripleFault : Exception;

    static bool IsContributory(int v) => v is Vector.DE or Vector.TS or Vector.NP or Vector.SS or Vector.GP;

    /// <summary>Delivers the fault pending in CpuState, or reports it if intercepted. Null when the guest goes on.</summary>
    ExitReason? HandlePendingFault()
    {
        CpuState* s = State;
        int v = s->PendingFault - 1;
        ulong ec = s->PendingErrorCode;
        s->PendingFault = 0;
        if (((ExceptionIntercept >> v) & 1) != 0)
        {
            ExitVector = v;
            ExitErrorCode = ec;
            ExitMessage = $"{Vector.Name(v)} at RIP 0x{s->Rip:x}";
            return ExitReason.Exception;
        }
        return Deliver(v, ec, EventKind.Exception);
    }

    // The events of the last delivery, outermost first (what QEMU's -d int prints before a cpu_reset): the original
    // event, then each fault raised while delivering the one before. Preallocated; a delivery nests at most 3 deep.
    readonly int[] _chainVector = new int[4];
    readonly ulong[] _chainError = new ulong[4];
    int _chainLength;

    /// <summary>The chain of the last event delivery (after a triple fault: the events that led to it), outermost first.</summary>
    public IReadOnlyList<(int Vector, ulong ErrorCode)> LastDeliveryChain
    {
        get
        {
            var list = new List<(int, ulong)>(_chainLength);
            for (int k = 0; k < _chainLength; k++) list.Add((_chainVector[k], _chainError[k]));
            return list;
        }
    }

    /// <summary>Delivers an event, applying the double-fault rules (SDM Table 6-5) to faults raised while
    /// delivering it. Returns Shutdown on a triple fault, else null.</summary>
    ExitReason? Deliver(int vector, ulong errorCode, EventKind kind)
    {
        _chainLength = 0;
        try
        {
            DeliverWithCombination(vector, errorCode, kind);
            return null;
        }
        catch (TripleFault)
        {
            var chain = new System.Text.StringBuilder();
            for (int k = 0; k < _chainLength; k++)
                chain.Append(Vector.Name(_chainVector[k])).Append(Vector.HasErrorCode(_chainVector[k]) ? $"(0x{_chainError[k]:x})" : "").Append(" -> ");
            ExitMessage = $"triple fault: {chain}shutdown";
            return ExitReason.Shutdown;
        }
    }

    void DeliverWithCombination(int vector, ulong errorCode, EventKind kind)
    {
        if (_chainLength < _chainVector.Length) { _chainVector[_chainLength] = vector; _chainError[_chainLength] = errorCode; _chainLength++; }
        try
        {
            DeliverOnce(vector, errorCode, kind);
        }
        catch (CpuFault second)
        {
            if (vector == Vector.DF) throw new TripleFault();
            bool first = kind == EventKind.Exception;
            bool df = first && ((IsContributory(vector) && IsContributory(second.Vector))
                || (vector == Vector.PF && (IsContributory(second.Vector) || second.Vector == Vector.PF)));
            if (df) DeliverWithCombination(Vector.DF, 0, EventKind.Exception);
            else DeliverWithCombination(second.Vector, second.ErrorCode, EventKind.Exception);
        }
    }

    /// <summary>Delivers a software interrupt (INT n, INT3, INTO, INT1) from the interpreter: RIP is already
    /// past the instruction. A fault here is a fault of the INT instruction.</summary>
    internal void DeliverSoftwareInterruptOrExit(int vector, EventKind kind)
    {
        if (((ExceptionIntercept >> vector) & 1) != 0 && vector is Vector.BP or Vector.DB or Vector.OF)
        {
            // Intercepted trap: report it with RIP after the instruction, as KVM reports #BP to a debugger.
            throw new CpuFault(vector) { IsTrap = true };
        }
        DeliverOnce(vector, 0, kind);
    }

    /// <summary>Offers a pending NMI or maskable interrupt at an instruction boundary. Returns Shutdown
    /// if delivery triple-faulted.</summary>
    internal ExitReason? DeliverInterrupts()
    {
        CpuState* s = State;
        if (s->InterruptShadow != 0) return null;
        if (Volatile.Read(ref s->NmiPending) != 0 && s->NmiBlocked == 0)
        {
            Interlocked.Exchange(ref s->NmiPending, 0);
            NmisDelivered++;
            s->NmiBlocked = 1;
            s->HaltRequested = 0;
            return Deliver(Vector.NMI, 0, EventKind.Nmi);
        }
        if (Volatile.Read(ref s->InterruptRequest) != 0 && (s->Rflags & RFlags.IF) != 0 && InterruptController is { } pic)
        {
            int v = pic.Acknowledge();
            if (v < 0) return null;
            return Deliver(v, 0, EventKind.External);
        }
        return null;
    }

    void DeliverOnce(int vector, ulong errorCode, EventKind kind)
    {
        CpuState* s = State;
        bool hasError = kind == EventKind.Exception && Vector.HasErrorCode(vector);
        if ((s->Cr0 & Cr0.PE) == 0) { DeliverReal(vector); return; }
        ulong ext = kind is EventKind.Exception or EventKind.External or EventKind.Nmi ? 1UL : 0UL;
        ulong idtError = (ulong)vector * 8 + 2 + ext; // error code naming this IDT entry (SDM 6.13)
        bool longMode = (s->Efer & Efer.LMA) != 0;
        int entrySize = longMode ? 16 : 8;
        if ((ulong)vector * (ulong)entrySize + (ulong)entrySize - 1 > s->IdtrLimit) throw CpuFault.GP(idtError);
        ulong gateLin = s->IdtrBase + (ulong)vector * (ulong)entrySize;
        var gate = new Descriptor(ReadSystem64(gateLin));
        ulong gateHigh = longMode ? ReadSystem64(gateLin + 8) : 0;
        int type = gate.IsCodeOrData ? -1 : gate.Type;
        bool ok = longMode ? type is 0xE or 0xF : type is 0x6 or 0x7 or 0xE or 0xF or 0x5;
        if (!ok) throw CpuFault.GP(idtError);
        if (kind == EventKind.Software && gate.Dpl < s->Cpl) throw CpuFault.GP(idtError);
        if (!gate.Present) throw new CpuFault(Vector.NP, idtError);
        if (type == 0x5) throw new UnsupportedGuestFeatureException($"task gate in IDT entry {vector} (hardware task switching)");
        bool interruptGate = (type & 1) == 0;
        int gateBytes = longMode ? 8 : (type & 8) != 0 ? 4 : 2;
        ulong target = gate.GateOffset32 | (longMode ? (gateHigh & 0xFFFF_FFFF) << 32 : 0);

        ushort sel = gate.GateSelector;
        if ((sel & ~3) == 0) throw CpuFault.GP(ext);
        var code = ReadDescriptor(sel, ext);
        if (!code.IsCode || code.Dpl > s->Cpl) throw CpuFault.GP((sel & ~3UL) | ext);
        if (!code.Present) throw new CpuFault(Vector.NP, (sel & ~3UL) | ext);
        if (longMode && (!code.Long || code.DefaultBig)) throw CpuFault.GP((sel & ~3UL) | ext);
        int newCpl = code.IsConforming ? s->Cpl : code.Dpl;

        ulong oldFlags = Flags.Get(s);
        ulong oldRsp = s->Gpr[4];
        ushort oldSs = s->Ss.Selector, oldCs = s->Cs.Selector;
        ulong oldRip = s->Rip;
        // Stack selection (SDM 6.12.1, 6.14.4): privilege change -> TSS stack; long mode IST overrides.
        ulong rsp;
        SegmentCache newSs = s->Ss;
        bool stackSwitch = newCpl < s->Cpl;
        int ist = longMode ? gate.GateIst : 0;
        if (longMode)
        {
            if (ist != 0) rsp = ReadTss64(0x24 + (ist - 1) * 8);
            else if (stackSwitch) rsp = ReadTss64(4 + newCpl * 8);
            else rsp = oldRsp;
            rsp &= ~0xFUL;
            if (stackSwitch) newSs = new SegmentCache { Selector = (ushort)newCpl, Attributes = 0 };
        }
        else if (stackSwitch)
        {
            bool tss32 = (s->Tr.Attributes & 0xF) is 0x9 or 0xB;
            ulong espOff = tss32 ? (ulong)(4 + newCpl * 8) : (ulong)(2 + newCpl * 4);
            ulong ssOff = tss32 ? (ulong)(8 + newCpl * 8) : (ulong)(4 + newCpl * 4);
            if (ssOff + 1 > s->Tr.Limit) throw new CpuFault(Vector.TS, (s->Tr.Selector & ~3UL) | ext);
            ushort ss;
            using (Mmu.Supervisor())
            {
                rsp = tss32 ? Mem.Read32(this, s->Tr.Base + espOff) : Mem.Read16(this, s->Tr.Base + espOff);
                ss = Mem.Read16(this, s->Tr.Base + ssOff);
            }
            if ((ss & ~3) == 0 || (ss & 3) != newCpl) throw new CpuFault(Vector.TS, (ss & ~3UL) | ext);
            var ssd = ReadDescriptor(ss, ext, Vector.TS);
            if (!ssd.IsWritableData || ssd.Dpl != newCpl) throw new CpuFault(Vector.TS, (ss & ~3UL) | ext);
            if (!ssd.Present) throw new CpuFault(Vector.SS, (ss & ~3UL) | ext);
            newSs = ssd.ToCache(ss);
        }
        else rsp = oldRsp;

        // Build the frame on the new stack; registers change only after every store succeeded.
        bool ss32 = longMode || (newSs.Attributes & SegmentCache.DefaultBig) != 0;
        ulong ssBase = longMode ? 0 : newSs.Base;
        ulong sp = rsp;
        void PushFrame(CpuCore c, ulong value)
        {
            sp -= (ulong)gateBytes;
            if (!ss32) sp &= 0xFFFF; else if (!longMode) sp &= 0xFFFF_FFFF;
            // Outside IA-32e mode the frame must fit the handler's stack segment (SDM 6.12.1: #SS, with the new SS
            // selector as error code when the stack was switched).
            if (!longMode && !Interp.WithinLimit(newSs, sp, gateBytes))
                throw new CpuFault(Vector.SS, (stackSwitch ? (ulong)(newSs.Selector & ~3) : 0) | ext);
            ulong lin = longMode ? sp : (uint)(ssBase + sp);
            // The frame goes to the handler's stack, checked at the handler's privilege: CPL has not changed yet.
            if (newCpl < 3) { using var supervisor = c.Mmu.Supervisor(); Mem.Write(c, lin, gateBytes, value); }
            else Mem.Write(c, lin, gateBytes, value);
        }
        if (stackSwitch || longMode)
        {
            PushFrame(this, oldSs);
            PushFrame(this, oldRsp);
        }
        PushFrame(this, oldFlags);
        PushFrame(this, oldCs);
        PushFrame(this, oldRip);
        if (hasError) PushFrame(this, errorCode);

        // Commit.
        s->Ss = newSs;
        if (longMode) s->Gpr[4] = sp;
        else Interp.SetStackPointer(s, ss32 ? 4 : 2, sp);
        s->Cs = code.ToCache((ushort)((sel & ~3) | newCpl));
        ulong newFlags = oldFlags & ~(RFlags.TF | RFlags.NT | RFlags.RF | RFlags.VM);
        if (interruptGate) newFlags &= ~RFlags.IF;
        Flags.Set(s, newFlags);
        s->Rip = longMode ? target : gateBytes == 2 ? target & 0xFFFF : target & 0xFFFF_FFFF;
        s->HaltRequested = 0;
        OnPrivilegeOrModeChange();
    }

    void DeliverReal(int vector)
    {
        CpuState* s = State;
        // Real-mode IVT (SDM 20.1.4): 4-byte entries at IDTR.base; a vector beyond the limit is #GP.
        if ((ulong)vector * 4 + 3 > s->IdtrLimit) throw CpuFault.GP();
        uint entry = Mem.Read32(this, s->IdtrBase + (ulong)vector * 4);
        ulong flags = Flags.Get(s);
        ushort cs = s->Cs.Selector;
        ulong ip = s->Rip & 0xFFFF;
        // The three pushes are 16-bit; check them all before committing (SP wraps within 64 KiB).
        ulong sp = s->Gpr[4] & 0xFFFF;
        ulong b = s->Ss.Base;
        Mem.Write16(this, (uint)(b + ((sp - 2) & 0xFFFF)), (ushort)flags);
        Mem.Write16(this, (uint)(b + ((sp - 4) & 0xFFFF)), cs);
        Mem.Write16(this, (uint)(b + ((sp - 6) & 0xFFFF)), (ushort)ip);
        Interp.SetStackPointer(s, 2, sp - 6);
        Flags.Set(s, flags & ~(RFlags.IF | RFlags.TF | RFlags.AC | RFlags.RF));
        s->Cs.LoadRealMode((ushort)(entry >> 16));
        s->Rip = entry & 0xFFFF;
        s->HaltRequested = 0;
        UpdateMode();
    }

    /// <summary>Reads a GDT/LDT descriptor; a selector past the table limit raises <paramref name="vector"/>
    /// (#GP by default) with the selector as error code.</summary>
    internal Descriptor ReadDescriptor(ushort selector, ulong ext = 0, int vector = Vector.GP)
    {
        CpuState* s = State;
        ulong index = (ulong)(selector & ~7);
        ulong tableBase, tableLimit;
        if ((selector & 4) != 0)
        {
            if (s->Ldtr.Selector == 0 && (s->Ldtr.Attributes & SegmentCache.Present) == 0) throw new CpuFault(vector, (selector & ~3UL) | ext);
            tableBase = s->Ldtr.Base; tableLimit = s->Ldtr.Limit;
        }
        else { tableBase = s->GdtrBase; tableLimit = s->GdtrLimit; }
        if (index + 7 > tableLimit) throw new CpuFault(vector, (selector & ~3UL) | ext);
        return new Descriptor(ReadSystem64(tableBase + index));
    }

    /// <summary>A descriptor-table or TSS read: a supervisor access whatever the CPL (SDM 4.6.1 "implicit supervisor-mode access").</summary>
    ulong ReadSystem64(ulong lin)
    {
        using var supervisor = Mmu.Supervisor();
        return Mem.Read64(this, lin);
    }

    ulong ReadTss64(int offset)
    {
        CpuState* s = State;
        if ((ulong)offset + 7 > s->Tr.Limit) throw new CpuFault(Vector.TS, s->Tr.Selector & ~3UL);
        return ReadSystem64(s->Tr.Base + (ulong)offset);
    }

    /// <summary>CS, CR0 or EFER changed: recompute the mode bits; a new CPL changes which pages the TLB may map.</summary>
    internal void OnPrivilegeOrModeChange()
    {
        byte oldCpl = State->Cpl;
        UpdateMode();
        if (State->Cpl != oldCpl) Mmu.DropAllEntries();
    }
}
