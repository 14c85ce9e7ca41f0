import type { Command } from "commander";
import { UsageError } from "../errors.js";

/** A command path ("keys create") with the words that may follow it: its subcommands and its flags. */
interface CompletionNode {
  path: string[];
  /** Other names of the last word (`ls` for `list`). */
  aliases: string[];
  description: string;
  subcommands: string[];
  flags: { flag: string; description: string }[];
}

/** Walks the program as built, so completions never drift from the commands and flags that exist. */
function completionTree(program: Command): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const visit = (command: Command, path: string[]) => {
    const subcommands = command.commands.filter((sub) => sub.name() !== "help");
    nodes.push({
      path,
      aliases: command.aliases(),
      description: command.description(),
      subcommands: subcommands.flatMap((sub) => [sub.name(), ...sub.aliases()]),
      flags: command.options
        .filter((option) => !option.hidden && option.long)
        .map((option) => ({ flag: option.long!, description: option.description })),
    });
    for (const sub of subcommands) visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
  return nodes;
}

const words = (node: CompletionNode) => [...node.subcommands, ...node.flags.map((f) => f.flag), "--help"].join(" ");

function bashScript(nodes: CompletionNode[]): string {
  const cases = nodes
    .filter((node) => node.path.length > 0)
    .map((node) => `    "${node.path.join(" ")}") words="${words(node)}" ;;`)
    .join("\n");
  return `# freehold completion for bash: eval "$(freehold completion bash)" (or save it in bash-completion's folder)
_freehold() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word i words
  # The command path so far: the words before the cursor that are not flags (two levels: "keys create").
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -* ]] && continue
    case "\${path:+$path }$word" in
${nodes
  .filter((node) => node.path.length > 0)
  .map((node) => {
    const spellings = [node.path.at(-1)!, ...node.aliases].map(
      (last) => `"${[...node.path.slice(0, -1), last].join(" ")}"`,
    );
    return `      ${spellings.join(" | ")}) path="${node.path.join(" ")}" ;;`;
  })
  .join("\n")}
    esac
  done
  case "$path" in
    "") words="${words(nodes[0]!)}" ;;
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _freehold freehold
`;
}

function zshScript(nodes: CompletionNode[]): string {
  // zsh runs bash completion functions through bashcompinit: one source of truth for both shells.
  return `# freehold completion for zsh: eval "$(freehold completion zsh)"
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(nodes)}`;
}

const fishQuote = (text: string) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

function fishScript(nodes: CompletionNode[]): string {
  const lines = ["# freehold completion for fish: freehold completion fish | source", "complete -c freehold -f"];
  for (const node of nodes) {
    const condition =
      node.path.length === 0
        ? "__fish_use_subcommand"
        : `__fish_seen_subcommand_from ${node.path.at(-1)}${node.path.length === 1 ? "" : `; and __fish_seen_subcommand_from ${node.path[0]}`}`;
    for (const sub of node.subcommands) lines.push(`complete -c freehold -n ${fishQuote(condition)} -a ${sub}`);
    for (const { flag, description } of node.flags)
      lines.push(
        `complete -c freehold -n ${fishQuote(condition)} -l ${flag.replace(/^--/, "")} -d ${fishQuote(description)}`,
      );
  }
  return `${lines.join("\n")}\n`;
}

const shells = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script for bash, zsh or fish")
    .argument("<shell>", "bash, zsh or fish")
    .action((shell: string) => {
      const script = shells[shell as keyof typeof shells];
      if (!script) throw new UsageError(`completion is for bash, zsh or fish, not ${JSON.stringify(shell)}`);
      process.stdout.write(script(completionTree(program)));
    });
}
