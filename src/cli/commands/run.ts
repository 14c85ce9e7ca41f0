import { createInterface } from "node:readline";
import type { Command } from "commander";
import pc from "picocolors";
import type { ChatEvent, ChatMessage } from "../../core/chat.js";
import { Freehold } from "../../main.js";
import { commandConfig } from "../context.js";
import { UsageError } from "../errors.js";

interface RunOptions {
  raw?: boolean;
  temperature?: string;
  maxTokens?: string;
  seed?: string;
  threads?: string;
}

function numberOption(value: string | undefined, name: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) {
    throw new UsageError(`--${name} must be ${integer ? "an integer" : "a number"}, not "${value}"`);
  }
  return parsed;
}

/** Writes streamed text; returns false when the stream ended with an error. */
async function printStream(events: AsyncIterable<ChatEvent>): Promise<string> {
  let text = "";
  for await (const event of events) {
    if (event.type === "text-delta") {
      process.stdout.write(event.text);
      text += event.text;
    } else if (event.type === "error") {
      throw new Error(event.error.message);
    }
  }
  return text;
}

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return text.trim();
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("chat with a model in the terminal, or answer one prompt (/bye leaves; Ctrl-C stops an answer)")
    .argument("<model>", "model name, e.g. demo:tiny")
    .argument("[prompt...]", "answer this prompt and exit")
    .option("--raw", "complete the prompt as raw text instead of chatting (for models without a chat template)")
    .option("--temperature <t>", "sampling temperature")
    .option("--max-tokens <n>", "most tokens to generate per answer")
    .option("--seed <n>", "random seed")
    .option("--threads <n>", "CPU threads for the model")
    .action(async (modelName: string, promptWords: string[], options: RunOptions, command: Command) => {
      const sampling = {
        ...(options.temperature !== undefined
          ? { temperature: numberOption(options.temperature, "temperature", false)! }
          : {}),
        ...(options.maxTokens !== undefined ? { maxTokens: numberOption(options.maxTokens, "max-tokens", true)! } : {}),
        ...(options.seed !== undefined ? { seed: numberOption(options.seed, "seed", true)! } : {}),
      };
      const config = commandConfig(command, options.threads !== undefined ? { threads: options.threads } : {});
      const freehold = await Freehold.open({ ...config, allowedHosts: [...config.allowedHosts], keepAliveSeconds: -1 });
      try {
        const details = await freehold.store.show(modelName).catch(() => undefined);
        if (details?.manifest.summary.synthetic) {
          process.stderr.write(pc.dim(`${details.name} is a synthetic model: random weights, so its text is noise.\n`));
        }
        // Load with visible progress before the first prompt.
        const interactive = process.stdout.isTTY === true;
        const started = Date.now();
        const spinner = interactive
          ? setInterval(
              () =>
                process.stderr.write(
                  `\r${pc.dim(`loading ${modelName} ${((Date.now() - started) / 1000).toFixed(1)}s`)}`,
                ),
              100,
            )
          : undefined;
        try {
          await freehold.engine.acquire(modelName);
        } finally {
          if (spinner) {
            clearInterval(spinner);
            process.stderr.write("\r\x1b[K");
          }
        }

        let prompt = promptWords.join(" ");
        if (!prompt && !process.stdin.isTTY) prompt = await readStdin();
        if (prompt) {
          const events = options.raw
            ? freehold.complete({ model: modelName, prompt, ...sampling })
            : freehold.chat({ model: modelName, messages: [{ role: "user", content: prompt }], ...sampling });
          await printStream(events);
          process.stdout.write("\n");
          return;
        }
        await interactiveChat(freehold, modelName, options.raw === true, sampling);
      } finally {
        await freehold.close();
      }
    });
}

async function interactiveChat(
  freehold: Freehold,
  model: string,
  raw: boolean,
  sampling: Record<string, number>,
): Promise<void> {
  const history: ChatMessage[] = [];
  const lines = createInterface({ input: process.stdin, output: process.stdout, prompt: ">>> ", historySize: 100 });
  process.stdout.write(pc.dim("Type a message; /bye or Ctrl-D leaves, Ctrl-C stops an answer.\n"));
  let answering: AbortController | undefined;
  lines.on("SIGINT", () => {
    if (answering) {
      answering.abort();
      return;
    }
    process.stdout.write(pc.dim("\n(use /bye or Ctrl-D to leave)\n"));
    lines.prompt();
  });
  lines.prompt();
  for await (const line of lines) {
    const text = line.trim();
    if (text === "/bye") break;
    if (!text) {
      lines.prompt();
      continue;
    }
    answering = new AbortController();
    const signal = answering.signal;
    try {
      history.push({ role: "user", content: text });
      const events = raw
        ? freehold.complete({ model, prompt: text, signal, ...sampling })
        : freehold.chat({ model, messages: history, signal, ...sampling });
      const answer = await printStream(events);
      if (!raw) history.push({ role: "assistant", content: answer });
      process.stdout.write(signal.aborted ? pc.dim(" [stopped]\n") : "\n");
    } catch (error) {
      history.pop();
      process.stdout.write(`\n${pc.red(`error: ${(error as Error).message}`)}\n`);
    } finally {
      answering = undefined;
    }
    lines.prompt();
  }
  lines.close();
}
