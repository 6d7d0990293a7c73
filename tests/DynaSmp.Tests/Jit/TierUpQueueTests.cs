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
        var q = new TierUpQueue<Item>(i => i.Rank, _ => true);
        foreach (var n in new[] { "a", "b", "c", "d" }) q.Add(new Item(n, 0));
        Assert.Equal(["a", "b", "c", "d"], Drain(q));
        Assert.False(q.TryTake(out _));
    }

    [Fact]
    public void The_highest_rank_comes_first_and_ranks_are_read_again_at_every_take()
    {
        var q = new TierUpQueue<Item>(i => i.Rank, _ => true);
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
    public void An_item_that_stays_cold_is_released_if_its_owner_agrees_and_the_count_stays_right()
    {
        var keep = new Item("promotion", 0);
        var q = new TierUpQueue<Item>(i => i.Rank, i => i != keep);
        var cold = new Item("cold", 0);
        var warm = new Item("warm", 0);
        q.Add(cold); q.Add(warm); q.Add(keep);
        // Each take, the three wait one take longer behind a hotter newcomer; warm runs once per take, cold never.
        for (int k = 1; k <= TierUpQueue<Item>.ColdAfter + 1; k++)
        {
            warm.Rank = k;
            q.Add(new Item("filler", 1_000_000));
            Assert.True(q.TryTake(out var taken));
            Assert.Equal("filler", taken.Name);
            Assert.Equal(k < TierUpQueue<Item>.ColdAfter ? 3 : 2, q.Waiting); // cold goes once it has waited ColdAfter takes
        }
        Assert.True(q.TryTake(out var w));
        Assert.Same(warm, w);
        Assert.True(q.TryTake(out var p));
        Assert.Same(keep, p); // never released, however cold
        Assert.False(q.TryTake(out _)); // one count per item: nothing is left over
    }

    /// <summary>A list longer than ScanShare: one reading of the ranks hands out its best few, best first, and the next
    /// reading sees the ranks as they are then.</summary>
    [Fact]
    public void A_long_list_hands_out_its_best_few_per_reading_of_the_ranks()
    {
        int reads = 0;
        var q = new TierUpQueue<Item>(i => { reads++; return i.Rank; }, _ => false);
        int n = 2 * TierUpQueue<Item>.ScanShare + 1; // three handed out per reading
        var items = new List<Item>();
        for (int k = 0; k < n; k++) { items.Add(new Item($"i{k}", k % 7)); q.Add(items[^1]); }
        var hot = items[100]; hot.Rank = 1000;
        var warm = items[200]; warm.Rank = 500;
        var tie = items[13]; tie.Rank = 500; // ties with warm, queued earlier
        Assert.True(q.TryTake(out var first));
        Assert.Equal(n, reads);
        Assert.Same(hot, first);
        items[300].Rank = 2000; // turns hot after the reading
        Assert.True(q.TryTake(out var second));
        Assert.True(q.TryTake(out var third));
        Assert.Equal(n, reads); // served from the same reading
        Assert.Same(tie, second);
        Assert.Same(warm, third);
        Assert.Equal(n - 3, q.Waiting);
        Assert.True(q.TryTake(out var fourth)); // a new reading
        Assert.Equal(2 * n - 3, reads);
        Assert.Same(items[300], fourth);
        Assert.Equal(n - 4, Drain(q).Count);
        Assert.False(q.TryTake(out _)); // one count per item
    }

    [Fact]
    public async Task Take_waits_for_an_item_added_by_another_thread()
    {
        var q = new TierUpQueue<Item>(i => i.Rank, _ => true);
        var taker = Task.Run(q.Take);
        await Task.Delay(50);
        Assert.False(taker.IsCompleted);
        q.Add(new Item("x", 0));
        Assert.Equal("x", (await taker.WaitAsync(TimeSpan.FromSeconds(10))).Name);
    }
}
