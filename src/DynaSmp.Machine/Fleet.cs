namespace DynaSmp.Machine;

/// <summary>
/// Runs many VMs with at most <see cref="Window"/> of them running at once, on host threads that move from one VM to
/// the next: a slot's k-th thread runs vCPU k of every VM the slot takes. Thread creation is then set-up for the window
/// only (a .NET Thread.Start cost 0.6 ms on the 2-core Firecracker hosts here, 0.6 s for 64 x 16 vCPUs), and VMs past
/// the host's cores wait their turn instead of sharing the cores' time slices, where each AP waited milliseconds for a
/// core between its INIT and its first instruction. A window of the fleet's size runs every VM at once.
/// </summary>
public sealed class Fleet
{
    readonly IReadOnlyList<Vm> _vms;
    readonly Slot[] _slots;
    readonly Thread[] _threads;
    readonly int _threadsPerSlot;
    int _next;
    int _started;
    int _running, _peakRunning;

    public int Window => _slots.Length;
    /// <summary>Host threads the fleet runs on: the window times the most bodies a VM has.</summary>
    public int ThreadCount => _threads.Length;
    /// <summary>The most VMs that were between their start and their last thread's exit at one time (at most <see cref="Window"/>).</summary>
    public int PeakRunning => Volatile.Read(ref _peakRunning);

    // Each thread of a slot waits on its own event: one shared Monitor woke all of a slot's threads at once, and 16
    // threads fighting for its lock spun in the runtime for 1.3% of each vCPU thread's samples in a 64 x 16 boot.
    sealed class Slot(int threads)
    {
        public volatile int Vm = -1;   // the VM this slot runs now; -1 when the fleet has no more
        public int ThreadsLeft;        // threads still inside the current VM's bodies (or about to skip them)
        public readonly ManualResetEventSlim[] Go = Enumerable.Range(0, threads).Select(_ => new ManualResetEventSlim(false, spinCount: 0)).ToArray();
    }

    public Fleet(IReadOnlyList<Vm> vms, int window)
    {
        if (vms.Count == 0) throw new ArgumentException("a fleet needs at least one VM", nameof(vms));
        if (window < 1) throw new ArgumentOutOfRangeException(nameof(window), window, "the window holds at least one VM");
        _vms = vms;
        _slots = new Slot[Math.Min(window, vms.Count)];
        int threads = 0, stack = 0;
        foreach (var vm in vms)
        {
            vm.AttachToHostThreads();
            threads = Math.Max(threads, vm.BodyCount);
            stack = Math.Max(stack, vm.Config.ThreadStackBytes);
        }
        _threadsPerSlot = threads;
        for (int s = 0; s < _slots.Length; s++) _slots[s] = new Slot(threads);
        _threads = new Thread[_slots.Length * threads];
        for (int s = 0; s < _slots.Length; s++)
            for (int k = 0; k < threads; k++)
            {
                var slot = _slots[s];
                int body = k;
                _threads[s * threads + k] = new Thread(() => Work(slot, body), stack) { IsBackground = true, Name = $"DynaSmp vCPU {k}" };
            }
        // Threads wait in their slot for a first VM, so starting them here is set-up, as Vm.Prepare is.
        foreach (var t in _threads) t.Start();
    }

    /// <summary>Starts the first <see cref="Window"/> VMs; each later VM starts as soon as a running one has stopped
    /// and every thread of its slot has left it.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the fleet was already started");
        foreach (var slot in _slots) AssignNext(slot);
    }

    void AssignNext(Slot slot)
    {
        int next = Interlocked.Increment(ref _next) - 1;
        // Every thread of the slot has left its VM and waits on its Go (reset before it decremented ThreadsLeft).
        slot.ThreadsLeft = _threadsPerSlot;
        slot.Vm = next < _vms.Count ? next : -1;
        foreach (var go in slot.Go) go.Set();
        if (next >= _vms.Count) return;
        int running = Interlocked.Increment(ref _running);
        for (int peak = Volatile.Read(ref _peakRunning); running > peak; peak = Volatile.Read(ref _peakRunning))
            if (Interlocked.CompareExchange(ref _peakRunning, running, peak) == peak) break;
        _vms[next].Start();
    }

    void Work(Slot slot, int body)
    {
        var go = slot.Go[body];
        while (true)
        {
            go.Wait();
            go.Reset();
            int vm = slot.Vm;
            if (vm < 0) return;
            if (body < _vms[vm].BodyCount) _vms[vm].RunBody(body);
            // The last thread out hands the slot to the next VM: a VM never shares its slot's threads with another.
            if (Interlocked.Decrement(ref slot.ThreadsLeft) == 0)
            {
                Interlocked.Decrement(ref _running);
                AssignNext(slot);
            }
        }
    }
}
