import { createInterface } from "node:readline";
import type { Command } from "commander";
import pc from "picocolors";
import { Freehold } from "../../library.js";
import {
  type ChatState,
  handleInput,
  type ModelFacts,
  MultilineReader,
  messagesFor,
  type Parameters,
} from "../chatCommands.js";
import { commandConfig, serverTarget, withServerFlags } from "../context.js";
import { UsageError } from "../errors.js";
import { freeholdServerAt, localBackend, type RunBackend, serverBackend } from "../runBackends.js";

interface RunOptions {
  raw?: boolean;
  temperature?: string;
  maxTokens?: string;
  seed?: string;
  threads?: string;
  interactive?: boolean;
  local?: boolean;
  host?: string;
  apiKey?: string;
}

function numberOption(value: string | undefined, name: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) {
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"}, not "${value}"`);
  }
  return parsed;
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return text.trim();
}

/** The flags as the session's starting parameters (Ollama's names, as /set parameter changes them). */
function startingParameters(options: RunOptions): Parameters {
  const parameters: Parameters = {};
  const temperature = numberOption(options.temperature, "temperature", false);
  const maxTokens = numberOption(options.maxTokens, "max-tokens", true);
  const seed = numberOption(options.seed, "seed", true);
  if (temperature !== undefined) parameters.temperature = temperature;
  if (maxTokens !== undefined) parameters.num_predict = maxTokens;
  if (seed !== undefined) parameters.seed = seed;
  return parameters;
}

/**
 * A running server when one answers (unless --local), else the model loaded here. `--host` given on the command line
 * must answer: the person asked for that server. FREEHOLD_HOST (also the address `serve` listens on) falls back.
 */
async function chooseBackend(command: Command, options: RunOptions): Promise<RunBackend> {
  if (!options.local) {
    const target = serverTarget(command, options);
    if (await freeholdServerAt(target)) return serverBackend(target);
    if (options.host)
      throw new Error(
        `no freehold server answered at ${target.base}; start one with \`freehold serve\`, or leave out --host to load the model in this process`,
      );
  }
  const config = commandConfig(command, options.threads !== undefined ? { threads: options.threads } : {});
  const freehold = await Freehold.open({ ...config, allowedHosts: [...config.allowedHosts], keepAliveSeconds: -1 });
  return localBackend(freehold);
}

export function registerRun(program: Command): void {
  withServerFlags(
    program
      .command("run")
      .description(
        "chat with a model in the terminal, or answer one prompt; uses the running server when there is one (/? lists the chat commands)",
      )
      .argument("<model>", "model name, e.g. demo:stories")
      .argument("[prompt...]", "answer this prompt and exit")
      .option(
        "--raw",
        "complete the prompt as raw text instead of chatting (automatic for models without a chat template)",
      )
      .option("--temperature <t>", "sampling temperature")
      .option("--max-tokens <n>", "most tokens to generate per answer")
      .option("--seed <n>", "random seed")
      .option("--threads <n>", "CPU threads for the model (when it is loaded in this process)")
      .option(
        "-i, --interactive",
        "read stdin line by line as a chat, commands included, even when it is not a terminal",
      )
      .option("--local", "load the model in this process even when a server is running"),
  ).action(async (modelName: string, promptWords: string[], options: RunOptions, command: Command) => {
    const parameters = startingParameters(options);
    const backend = await chooseBackend(command, options);
    try {
      const described = await backend.describe(modelName);
      if (described.synthetic)
        process.stderr.write(
          `${pc.dim(`${described.name} is a synthetic model: random weights, so its text is noise.`)}\n`,
        );
      const facts: ModelFacts = { ...described, raw: options.raw === true || described.raw };
      if (!options.raw && described.raw)
        // The colour's reset before the newline: the note stays one line where colours are on (picocolors turns them
        // on under CI=true too).
        process.stderr.write(
          `${pc.dim(`${described.name} has no chat template: running it as raw text completion (it continues what you type; --raw says so)`)}\n`,
        );
      await backend.load(modelName);

      let prompt = promptWords.join(" ");
      const lineByLine = process.stdin.isTTY === true || options.interactive === true;
      if (!prompt && !lineByLine) prompt = await readStdin();
      if (prompt) {
        for await (const text of backend.answer({
          model: modelName,
          raw: facts.raw,
          messages: [{ role: "user", content: prompt }],
          prompt,
          parameters,
        }))
          process.stdout.write(text);
        process.stdout.write("\n");
        return;
      }
      await chatSession(backend, modelName, facts, parameters);
    } finally {
      await backend.close();
    }
  });
}

/** The interactive chat: commands, multi-line input, history; Ctrl-C stops an answer, /bye or Ctrl-D leaves. */
async function chatSession(
  backend: RunBackend,
  model: string,
  facts: ModelFacts,
  parameters: Parameters,
): Promise<void> {
  const state: ChatState = { system: undefined, parameters, history: [] };
  const terminal = process.stdin.isTTY === true;
  const lines = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: ">>> ",
    historySize: 100,
    terminal,
  });
  const prompt = (more = false) => {
    if (!terminal) return;
    lines.setPrompt(more ? "... " : ">>> ");
    lines.prompt();
  };
  if (terminal) process.stdout.write(pc.dim('Send a message (/? for help, """ for several lines, /bye to leave)\n'));
  let answering: AbortController | undefined;
  lines.on("SIGINT", () => {
    if (answering) {
      answering.abort();
      return;
    }
    process.stdout.write(pc.dim("\n(use /bye or Ctrl-D to leave)\n"));
    prompt();
  });
  const multiline = new MultilineReader();
  prompt();
  for await (const line of lines) {
    const input = multiline.feed(line);
    if (input === undefined) {
      prompt(true);
      continue;
    }
    if (!input.trim()) {
      prompt();
      continue;
    }
    const step = handleInput(input, state, facts);
    if (step.kind === "bye") break;
    if (step.kind === "say") {
      process.stdout.write(`${step.text}\n`);
      prompt();
      continue;
    }
    answering = new AbortController();
    const signal = answering.signal;
    let answer = "";
    try {
      for await (const text of backend.answer({
        model,
        raw: facts.raw,
        messages: messagesFor(state, step.text),
        prompt: step.text,
        parameters: state.parameters,
        signal,
      })) {
        process.stdout.write(text);
        answer += text;
      }
      if (!facts.raw) state.history.push({ role: "user", content: step.text }, { role: "assistant", content: answer });
      process.stdout.write(signal.aborted ? pc.dim(" [stopped]\n") : "\n");
    } catch (error) {
      if (signal.aborted) process.stdout.write(pc.dim(" [stopped]\n"));
      else process.stdout.write(`\n${pc.red(`error: ${(error as Error).message}`)}\n`);
    } finally {
      answering = undefined;
    }
    prompt();
  }
  lines.close();
}
