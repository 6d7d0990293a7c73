using System.Text;
using DynaSmp.Cli;

namespace DynaSmp.Tests.Boot;

/// <summary>`run`'s serial output on stdout: whole lines in one write, and nothing held back for long (a prompt or an
/// echoed key has no newline).</summary>
public class SerialConsoleOutTests
{
    /// <summary>Counts the writes that reach the host stream.</summary>
    sealed class CountingStream : MemoryStream
    {
        public int Writes;
        public override void Write(byte[] buffer, int offset, int count) { lock (this) { Writes++; base.Write(buffer, offset, count); } }
        public string Text { get { lock (this) return Encoding.ASCII.GetString(ToArray()); } }
    }

    static void Put(SerialConsoleOut o, string s) { foreach (char c in s) o.Write((byte)c); }

    [Fact]
    public void A_line_leaves_in_one_write_at_its_newline()
    {
        var s = new CountingStream();
        using var o = new SerialConsoleOut(s);
        Put(o, "Linux version 6.1\n");
        Assert.Equal("Linux version 6.1\n", s.Text);
        Assert.Equal(1, s.Writes);
        Put(o, "a\nb\n");
        Assert.Equal("Linux version 6.1\na\nb\n", s.Text);
        Assert.Equal(3, s.Writes);
    }

    [Fact]
    public void A_partial_line_leaves_after_a_quiet_moment()
    {
        var s = new CountingStream();
        using var o = new SerialConsoleOut(s);
        Put(o, "~ # ");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (s.Text.Length == 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        Assert.Equal("~ # ", s.Text); // the whole prompt, not held for a newline that never comes
        Put(o, "l");
        clock.Restart();
        while (s.Text.Length == 4 && clock.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        Assert.Equal("~ # l", s.Text); // and the next key after it
    }

    [Fact]
    public void A_full_buffer_and_dispose_flush_everything_in_order()
    {
        var s = new CountingStream();
        var o = new SerialConsoleOut(s);
        var expected = new StringBuilder();
        for (int k = 0; k < 10_000; k++) { char c = (char)('a' + k % 26); o.Write((byte)c); expected.Append(c); }
        Assert.True(s.Text.Length >= 8192); // two full buffers left without a newline
        Assert.StartsWith(s.Text, expected.ToString(), StringComparison.Ordinal);
        o.Dispose();
        Assert.Equal(expected.ToString(), s.Text);
        o.Write((byte)'\n'); // a vCPU still printing after the command's end is not lost
        Assert.Equal(expected + "\n", s.Text);
    }
}
