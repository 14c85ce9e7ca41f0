import type { ChatMessage } from "../core/chat.js";

/**
 * The commands of `freehold run`'s chat, as Ollama's `ollama run` has them: /set parameter, /set system, /show,
 * /clear, /bye, /? — and multi-line input between `"""` lines. Pure state and text, so it is the same whether the
 * answers come from a running server or a model loaded in this process.
 */

/** Parameters by their Ollama names (what `/set parameter` and a Modelfile's PARAMETER take). */
export type Parameters = Record<string, number | string[]>;

const numeric: Record<string, { integer: boolean; min?: number; meaning: string }> = {
  temperature: { integer: false, min: 0, meaning: "randomness; 0 always picks the likeliest token" },
  top_p: { integer: false, min: 0, meaning: "sample from the smallest set of tokens whose probability reaches this" },
  top_k: { integer: true, min: 0, meaning: "sample from this many likeliest tokens (0: all)" },
  min_p: { integer: false, min: 0, meaning: "drop tokens less likely than this fraction of the likeliest" },
  seed: { integer: true, meaning: "random seed, for repeatable answers" },
  num_predict: { integer: true, min: -1, meaning: "most tokens per answer (-1: no limit)" },
  repeat_penalty: { integer: false, min: 0, meaning: "how strongly to avoid repeating tokens" },
  repeat_last_n: { integer: true, min: -1, meaning: "how many recent tokens the repeat penalty looks at" },
  presence_penalty: { integer: false, meaning: "penalty for tokens that appeared at all" },
  frequency_penalty: { integer: false, meaning: "penalty growing with how often a token appeared" },
};

export const parameterNames = [...Object.keys(numeric), "stop"];

export interface ModelFacts {
  name: string;
  /** Where answers come from: "the server at http://…" or "this process". */
  where: string;
  /** Chat (the model's template) or raw completion. */
  raw: boolean;
  /** Lines for /show info: architecture, parameters, quantization, context. */
  info: [string, string][];
  template: string;
}

export interface ChatState {
  system: string | undefined;
  parameters: Parameters;
  history: ChatMessage[];
}

/** What a line of input asks for. */
export type Step = { kind: "say"; text: string } | { kind: "ask"; text: string } | { kind: "bye" };

const help = `Available Commands:
  /set            Set session variables
  /show           Show model information
  /clear          Clear session context
  /bye            Exit
  /?, /help       Help for a command

Use """ to begin a multi-line message (and """ to end it).`;

const setHelp = `Available Commands:
  /set parameter ...     Set a parameter
  /set system <string>   Set the system message`;

const showHelp = `Available Commands:
  /show info         Show details for this model
  /show parameters   Show the parameters set in this session
  /show system       Show the system message
  /show template     Show the prompt template`;

function parameterHelp(): string {
  return [
    "Parameters (as in Ollama):",
    ...Object.entries(numeric).map(([name, spec]) => `  /set parameter ${name.padEnd(18)} ${spec.meaning}`),
    `  /set parameter ${"stop".padEnd(18)} stop at any of these strings (separated by spaces)`,
  ].join("\n");
}

function setParameter(state: ChatState, args: string[]): string {
  const [name, ...values] = args;
  if (!name || values.length === 0) return `Usage: /set parameter NAME VALUE\n${parameterHelp()}`;
  if (name === "stop") {
    state.parameters.stop = values;
    return `Set parameter 'stop' to '${values.join(", ")}'`;
  }
  const spec = numeric[name];
  if (!spec) return `Unknown parameter '${name}'; one of ${parameterNames.join(", ")}`;
  const text = values.join(" ");
  const value = Number(text);
  if (text === "" || !Number.isFinite(value) || (spec.integer && !Number.isInteger(value)))
    return `Couldn't set parameter: '${name}' must be ${spec.integer ? "a whole number" : "a number"}, not '${text}'`;
  if (spec.min !== undefined && value < spec.min)
    return `Couldn't set parameter: '${name}' must be at least ${spec.min}, not '${text}'`;
  state.parameters[name] = value;
  return `Set parameter '${name}' to '${text}'`;
}

function show(state: ChatState, facts: ModelFacts, what: string | undefined): string {
  switch (what) {
    case "info":
      return [
        "  Model",
        ...[
          ["name", facts.name],
          ["mode", facts.raw ? "raw completion (no chat template)" : "chat"],
          ["answered by", facts.where],
          ...facts.info,
        ].map(([key, value]) => `    ${key!.padEnd(16)}${value}`),
      ].join("\n");
    case "parameters": {
      const entries = Object.entries(state.parameters);
      if (entries.length === 0) return "No parameters set in this session (the model's defaults apply).";
      return [
        "Session parameters:",
        ...entries.map(([name, value]) => `  ${name.padEnd(18)}${Array.isArray(value) ? value.join(" ") : value}`),
      ].join("\n");
    }
    case "system":
      if (state.system === undefined) return "No system message was specified for this session.";
      return facts.raw ? `${state.system}\n(not used: raw completion has no system role)` : state.system;
    case "template":
      return facts.template || "No prompt template: the model runs as raw completion.";
    default:
      return showHelp;
  }
}

/** Handles one complete input (after multi-line joining): a command, or a message to send. */
export function handleInput(input: string, state: ChatState, facts: ModelFacts): Step {
  const text = input.trim();
  if (!text.startsWith("/")) return { kind: "ask", text: input };
  const [command, ...args] = text.split(/\s+/);
  switch (command) {
    case "/bye":
    case "/exit":
      return { kind: "bye" };
    case "/?":
    case "/help":
      if (args[0] === "set" || args[0] === "/set") return { kind: "say", text: setHelp };
      if (args[0] === "show" || args[0] === "/show") return { kind: "say", text: showHelp };
      return { kind: "say", text: help };
    case "/clear":
      state.history = [];
      return { kind: "say", text: "Cleared session context" };
    case "/set": {
      if (args[0] === "parameter") return { kind: "say", text: setParameter(state, args.slice(1)) };
      if (args[0] === "system") {
        // The rest of the line as typed (spaces kept); quotes around it, as people type them, are dropped.
        const message = text
          .replace(/^\/set\s+system\s*/, "")
          .replace(/^"([\s\S]*)"$/, "$1")
          .trim();
        if (!message) return { kind: "say", text: "Usage: /set system <message>" };
        state.system = message;
        return {
          kind: "say",
          text: facts.raw ? "Set system message (not used: raw completion has no system role)." : "Set system message.",
        };
      }
      return { kind: "say", text: setHelp };
    }
    case "/show":
      return { kind: "say", text: show(state, facts, args[0]) };
    default:
      return { kind: "say", text: `Unknown command '${command}'. Type /? for help` };
  }
}

/**
 * Joins multi-line input: a line starting with `"""` opens a message that the next line ending with `"""` closes (as
 * in `ollama run`); `"""one line"""` is a message by itself. Returns the whole message when complete.
 */
export class MultilineReader {
  private lines: string[] | undefined;

  get open(): boolean {
    return this.lines !== undefined;
  }

  feed(line: string): string | undefined {
    if (this.lines === undefined) {
      if (!line.startsWith('"""')) return line;
      const rest = line.slice(3);
      if (rest.endsWith('"""') && rest.length >= 3) return rest.slice(0, -3);
      this.lines = rest ? [rest] : [];
      return undefined;
    }
    if (line.endsWith('"""')) {
      const message = [...this.lines, line.slice(0, -3)].join("\n");
      this.lines = undefined;
      return message;
    }
    this.lines.push(line);
    return undefined;
  }
}

/** The messages to send for `text`: the system message, the history, and the new message. */
export function messagesFor(state: ChatState, text: string): ChatMessage[] {
  return [
    ...(state.system !== undefined ? [{ role: "system" as const, content: state.system }] : []),
    ...state.history,
    { role: "user", content: text },
  ];
}
