using DynaSmp.Jit.Translation;

namespace DynaSmp.Tests.Jit;

/// <summary>The tier-1 compile queue: arrival order, and blocks still interpreted long after they were queued jump ahead
/// of all, newest first.</summary>
public class TierUpQueueTests
{
    static List<int> Drain(TierUpQueue<int> q)
    {
        var order = new List<int>();
        while (q.TryTake(out int x)) order.Add(x);
        return order;
    }

    [Fact]
    public void Items_come_out_in_arrival_order()
    {
        var q = new TierUpQueue<int>();
        for (int k = 1; k <= 5; k++) q.Add(k);
        Assert.Equal([1, 2, 3, 4, 5], Drain(q));
    }

    [Fact]
    public void Expedited_items_come_first_newest_first_and_the_queued_copy_still_follows()
    {
        var q = new TierUpQueue<int>();
        for (int k = 1; k <= 4; k++) q.Add(k);
        q.Expedite(1);
        q.Expedite(2);
        q.Add(5);
        // The compile thread skips the second copy because the block is compiled by then (TierUp.CompileNow).
        Assert.Equal([2, 1, 1, 2, 3, 4, 5], Drain(q));
        Assert.False(q.TryTake(out _));
    }

    [Fact]
    public async Task Take_waits_for_an_item_added_by_another_thread()
    {
        var q = new TierUpQueue<int>();
        var taker = Task.Run(q.Take);
        await Task.Delay(50);
        Assert.False(taker.IsCompleted);
        q.Expedite(7);
        Assert.Equal(7, await taker.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
