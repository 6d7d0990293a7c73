using System.CommandLine;

namespace DynaSmp.Cli.Commands;

/// <summary>`dynasmp completion bash`: a bash completion function that asks dynasmp itself (System.CommandLine's
/// [suggest] directive), so completions always match the commands and choices of the installed version.</summary>
static class CompletionCommand
{
    public static Command Create()
    {
        var shell = new Argument<string>("SHELL") { Description = "the shell (bash)" };
        shell.AcceptOnlyFromAmong("bash");
        var c = new Command("completion", "print a shell completion script: eval \"$(dynasmp completion bash)\"") { shell };
        c.SetAction(_ => { Console.Write(Bash); return 0; });
        return c;
    }

    const string Bash = """
        _dynasmp_complete() {
          local line="${COMP_LINE#*[[:space:]]}"
          local pos=$(( COMP_POINT - ${#COMP_LINE} + ${#line} ))
          local IFS=$'\n'
          COMPREPLY=( $(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${pos}]" "${line}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -F _dynasmp_complete dynasmp

        """;
}
