import { Argument, type Command } from 'commander';
import { examples, handle, type Runtime } from '../command-kit.js';

/** What completion needs to know of one command: its subcommands, flags, which flags take a value, and fixed choices. */
interface CompletionNode {
  key: string;
  words: { word: string; description: string }[];
  valueFlags: string[];
  choices: Record<string, string[]>;
}

function collect(command: Command, path: string[], nodes: CompletionNode[]): void {
  const words: CompletionNode['words'] = [];
  const valueFlags: string[] = [];
  const choices: Record<string, string[]> = {};
  for (const sub of command.commands) {
    words.push({ word: sub.name(), description: sub.summary() || sub.description() });
    collect(sub, [...path, sub.name()], nodes);
  }
  for (const argument of command.registeredArguments) for (const choice of argument.argChoices ?? []) words.push({ word: choice, description: argument.description });
  for (const option of command.options) {
    for (const flag of [option.long, option.short]) {
      if (!flag) continue;
      words.push({ word: flag, description: option.description });
      if (option.required || option.optional) valueFlags.push(flag);
      if (option.argChoices) choices[flag] = option.argChoices;
    }
  }
  words.push({ word: '--help', description: 'show help' });
  nodes.push({ key: path.join(' '), words, valueFlags, choices });
}

const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

export function completionScript(program: Command, shell: 'bash' | 'zsh'): string {
  const nodes: CompletionNode[] = [];
  collect(program, [], nodes);
  const valueFlags = [...new Set(nodes.flatMap((n) => n.valueFlags))].sort();
  const choices = new Map<string, string[]>();
  for (const node of nodes) for (const [flag, list] of Object.entries(node.choices)) choices.set(flag, list);
  const name = program.name();
  return shell === 'bash' ? bashScript(name, nodes, valueFlags, choices) : zshScript(name, nodes, valueFlags, choices);
}

function bashScript(name: string, nodes: CompletionNode[], valueFlags: string[], choices: Map<string, string[]>): string {
  const fn = `_${name.replaceAll('-', '_')}_completion`;
  return `# ${name} completion for bash. Load it with:
#   source <(${name} completion bash)
# or install it: ${name} completion bash > ~/.local/share/bash-completion/completions/${name}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local path="" i skip=0 depth=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    if ((skip)); then skip=0; continue; fi
    case "\${COMP_WORDS[i]}" in
      ${valueFlags.join('|')}) skip=1 ;;
      -*) ;;
      *) if ((depth < 2)); then path="\${path:+$path }\${COMP_WORDS[i]}"; depth=$((depth + 1)); fi ;;
    esac
  done
  case "$prev" in
${[...choices].map(([flag, list]) => `    ${flag}) COMPREPLY=($(compgen -W ${quote(list.join(' '))} -- "$cur")); return ;;`).join('\n')}
    ${valueFlags.join('|')}) COMPREPLY=(); return ;;
  esac
  local words=""
  case "$path" in
${nodes.map((n) => `    ${quote(n.key)}) words=${quote(n.words.map((w) => w.word).join(' '))} ;;`).join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${name}
`;
}

function zshScript(name: string, nodes: CompletionNode[], valueFlags: string[], choices: Map<string, string[]>): string {
  const fn = `_${name.replaceAll('-', '_')}`;
  const described = (n: CompletionNode) => n.words.map((w) => quote(`${w.word.replaceAll(':', '\\:')}:${w.description.replaceAll('\n', ' ')}`)).join(' ');
  return `#compdef ${name}
# ${name} completion for zsh. Load it with:
#   source <(${name} completion zsh)
# or install it as _${name} in a directory of your $fpath.
${fn}() {
  local path_="" i skip=0 depth=0
  for ((i = 2; i < CURRENT; i++)); do
    if ((skip)); then skip=0; continue; fi
    case "\${words[i]}" in
      ${valueFlags.join('|')}) skip=1 ;;
      -*) ;;
      *) if ((depth < 2)); then path_="\${path_:+$path_ }\${words[i]}"; depth=$((depth + 1)); fi ;;
    esac
  done
  case "\${words[CURRENT-1]}" in
${[...choices].map(([flag, list]) => `    ${flag}) compadd -- ${list.map(quote).join(' ')}; return ;;`).join('\n')}
    ${valueFlags.join('|')}) _message 'value'; return ;;
  esac
  local -a entries
  case "$path_" in
${nodes.map((n) => `    ${quote(n.key)}) entries=(${described(n)}) ;;`).join('\n')}
  esac
  _describe -t commands '${name}' entries
}
if [[ "\${funcstack[1]}" == "${fn}" ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

export function registerCompletionCommand(program: Command, runtime: Runtime): void {
  const completion = program
    .command('completion')
    .description('print a shell completion script for bash or zsh')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']));
  examples(completion, ['source <(clinic completion bash)', 'clinic completion zsh > "${fpath[1]}/_clinic"']);
  handle(completion, runtime, async ({ out }, _options, [shell]) => {
    out.line(completionScript(program, shell as 'bash' | 'zsh').trimEnd());
  });
}
