using DynaSmp.Jit.Translation;

namespace DynaSmp.Tests.Jit;

/// <summary>The tier-1 compile queue: each take hands out the item of highest rank at that moment, the earliest queued
/// among equals; and how TierUp ranks its blocks.</summary>
public class TierUpQueueTests
{
    sealed class Item(string name, long rank)
    {
        public string Name = name;
        public long Rank = rank;
        public override string ToString() => Name;
    }

    static List<string> Drain(TierUpQueue<Item> q)
    {
        var order = new List<string>();
        while (q.TryTake(out var x)) order.Add(x.Name);
        return order;
    }

    [Fact]
    public void Equal_ranks_come_out_in_arrival_order()
    {
        var q = new TierUpQueue<Item>(i => i.Rank);
        foreach (var n in new[] { "a", "b", "c", "d" }) q.Add(new Item(n, 0));
        Assert.Equal(["a", "b", "c", "d"], Drain(q));
        Assert.False(q.TryTake(out _));
    }

    [Fact]
    public void The_highest_rank_comes_first_and_ranks_are_read_again_at_every_take()
    {
        var q = new TierUpQueue<Item>(i => i.Rank);
        var a = new Item("a", 5); var b = new Item("b", 1); var c = new Item("c", 9);
        q.Add(a); q.Add(b); q.Add(c);
        Assert.True(q.TryTake(out var first));
        Assert.Same(c, first);
        b.Rank = 50; // interpreted a lot while it waited
        Assert.True(q.TryTake(out var second));
        Assert.Same(b, second);
        q.Add(new Item("d", 5)); // ties with a, which was queued earlier
        Assert.Equal(["a", "d"], Drain(q));
    }

    [Fact]
    public async Task Take_waits_for_an_item_added_by_another_thread()
    {
        var q = new TierUpQueue<Item>(i => i.Rank);
        var taker = Task.Run(q.Take);
        await Task.Delay(50);
        Assert.False(taker.IsCompleted);
        q.Add(new Item("x", 0));
        Assert.Equal("x", (await taker.WaitAsync(TimeSpan.FromSeconds(10))).Name);
    }
}
