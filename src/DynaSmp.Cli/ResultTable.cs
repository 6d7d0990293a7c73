using Spectre.Console;
using Spectre.Console.Rendering;

namespace DynaSmp.Cli;

/// <summary>
/// A result table drawn by Spectre.Console: rounded boxes on a terminal; Markdown, never wrapped, when the output is
/// redirected, so a table from a CI log or a file pastes into notes and issues as it is.
/// </summary>
public sealed class ResultTable
{
    readonly Table _table;

    public ResultTable(params (string Header, bool RightAligned)[] columns)
    {
        _table = new Table { Border = Console.IsOutputRedirected ? TableBorder.Markdown : TableBorder.Rounded };
        foreach (var (header, right) in columns)
            _table.AddColumn(new TableColumn(new Text(header)) { Alignment = right ? Justify.Right : Justify.Left, NoWrap = true });
    }

    /// <summary>Cells are plain text (no Spectre markup is interpreted).</summary>
    public void Row(params string[] cells)
    {
        var items = new IRenderable[cells.Length];
        for (int i = 0; i < cells.Length; i++) items[i] = new Text(cells[i]);
        _table.AddRow(items);
    }

    public void Write()
    {
        if (!Console.IsOutputRedirected)
        {
            AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) }).Write(_table);
            return;
        }
        // Markdown: Spectre pads the missing top and bottom borders with blank lines of spaces; leave them out.
        var text = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(text), Ansi = AnsiSupport.No });
        console.Profile.Width = 100_000;
        console.Write(_table);
        foreach (var line in text.ToString().Split('\n'))
            if (line.Trim().Length > 0) Console.WriteLine(line.TrimEnd());
    }
}
