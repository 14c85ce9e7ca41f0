import type { Command } from "commander";
import { type Setting, settingNames, settings } from "../config/settings.js";

/** One or two examples per command, shown at the end of its --help (keyed by the command path). */
const examples: Record<string, string[]> = {
  serve: [
    "freehold serve",
    "FREEHOLD_HOST=0.0.0.0:11435 freehold serve   # needs a key: freehold keys create",
    "FREEHOLD_IMAGE_FETCH=images.example.com,*.cdn.example freehold serve   # image URLs from these hosts",
  ],
  run: [
    'freehold run demo:stories "Once upon a time"',
    "freehold run mymodel          # chat; /? lists the commands, /bye leaves",
  ],
  ps: ["freehold ps", "freehold ps --host 10.0.0.5:11435 --api-key $KEY --json"],
  stop: ["freehold stop mymodel"],
  import: [
    "freehold import ./qwen2.5-0.5b-instruct-q4_k_m.gguf --name qwen:0.5b",
    "freehold import ./gemma-3-4b-it-Q4_K_M.gguf --name gemma3 --projector ./mmproj-F16.gguf --link   # no copies",
  ],
  pull: [
    "freehold pull hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    "freehold pull hf.co/OWNER/REPO:Q8_0 --name mine",
    "freehold pull hf.co/ggml-org/gemma-3-4b-it-GGUF --no-projector   # text only: the mmproj is not fetched",
  ],
  adopt: [
    "freehold adopt          # lists what it finds (also $OLLAMA_MODELS, $HF_HOME/hub)",
    "freehold adopt 1 3      # imports those, no copy",
  ],
  lock: ["freehold lock            # pins every model", "freehold lock qwen:0.5b"],
  verify: ["freehold verify", "freehold verify --json"],
  create: ["freehold create brief -f brief.yaml   # from: qwen:0.5b, system: Be brief."],
  list: ["freehold list", "freehold list --format csv"],
  show: ["freehold show demo:stories", "freehold show demo:stories --json"],
  cp: ["freehold cp qwen:0.5b default"],
  rm: ["freehold rm qwen:0.5b"],
  synth: [
    "freehold synth tiny.gguf --preset tiny",
    "freehold synth qwen-shaped.gguf --chat-template test/fixtures/templates/Qwen-Qwen2.5-7B-Instruct.jinja",
  ],
  "keys create": ["freehold keys create --name alice --models qwen:0.5b --rpm 60 --expires 30d"],
  "keys list": ["freehold keys list", "freehold keys list --json"],
  "keys update": ["freehold keys update alice --daily-tokens 100000"],
  "keys revoke": ['freehold keys revoke alice --why "left the team"'],
  usage: ["freehold usage --by model,day --since 7d", "freehold usage --format csv > usage.csv"],
  "audit list": ["freehold audit list --limit 20", "freehold audit list --json | jq ."],
  "audit verify": ["freehold audit verify"],
  "audit head": ["freehold audit head >> /mnt/elsewhere/freehold-audit-heads.txt"],
  "audit acknowledge": ['freehold audit acknowledge 42 --why "restored from backup"'],
  mcp: ["freehold mcp            # in an MCP client's config: command freehold, args [mcp]"],
  "config check": ["freehold config check", "freehold config check ./freehold.yaml"],
  explain: ["freehold explain req_123   # the x-request-id a response carried"],
  doctor: ["freehold doctor --egress", "freehold doctor --egress --offline"],
  eval: [
    "freehold eval examples/eval/stories.yaml --models demo:stories --min-pass 0.8",
    "freehold eval suite.yaml --models demo:stories --junit eval.xml --csv answers.csv",
  ],
  completion: ['eval "$(freehold completion bash)"', "freehold completion fish | source"],
  "db status": ["freehold db status", "FREEHOLD_DATABASE_URL=postgres://freehold@db/freehold freehold db status"],
  "engine status": ["freehold engine status", "freehold engine status --json"],
  "engine build": ["freehold engine build", "freehold engine build --gpu cuda"],
  "db migrate": ["freehold db migrate --to postgres://freehold:secret@db.internal:5432/freehold"],
};

function pathOf(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current?.parent; current = current.parent) names.unshift(current.name());
  return names.join(" ");
}

/**
 * Help that reads like the tools people know: examples at the end of each command's help, defaults written as
 * typed (`default: 50`, not `default: "50"`), and under `serve --help` every environment variable with its meaning.
 */
export function polishHelp(program: Command): void {
  const visit = (command: Command) => {
    for (const option of command.options)
      if (typeof option.defaultValue === "string" && option.defaultValueDescription === undefined)
        option.defaultValueDescription = option.defaultValue;
    const lines = examples[pathOf(command)];
    if (lines) command.addHelpText("after", `\nExamples:\n${lines.map((line) => `  ${line}`).join("\n")}`);
    for (const sub of command.commands) visit(sub);
  };
  visit(program);
  const serve = program.commands.find((command) => command.name() === "serve");
  serve?.addHelpText(
    "after",
    `\nEnvironment (a flag beats its variable; freehold.yaml's server section comes last):\n${settingNames
      .map((name) => {
        const row = settings[name] as unknown as Setting;
        return `  ${row.env}\n      ${row.description} Default: ${row.shown.replaceAll("`", "")}.`;
      })
      .join("\n")}`,
  );
}
