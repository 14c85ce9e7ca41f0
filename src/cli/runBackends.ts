import pc from "picocolors";
import type { ChatEvent, ChatMessage } from "../core/chat.js";
import { NotFoundError, StoreError } from "../core/errors.js";
import type { Freehold } from "../library.js";
import type { ModelFacts, Parameters } from "./chatCommands.js";
import { fetchServer, type ServerTarget, serverFailure } from "./context.js";

/**
 * Where `freehold run` gets its answers: a running freehold server (over its Ollama API, streamed; the model is loaded
 * once, in the server, and shows in `freehold ps`), or a model loaded in this process when no server answers.
 */
export interface RunBackend {
  /** What /show info and the automatic raw mode need; throws when the model does not exist. */
  describe(model: string): Promise<ModelFacts & { synthetic: boolean }>;
  /** Loads the model before the first prompt (with visible progress on a terminal). */
  load(model: string): Promise<void>;
  /** Streams the answer's text. */
  answer(request: {
    model: string;
    raw: boolean;
    messages: ChatMessage[];
    prompt: string;
    parameters: Parameters;
    signal?: AbortSignal;
  }): AsyncIterable<string>;
  close(): Promise<void>;
}

/** A freehold server answers at the target (a quick, public GET /api/version), or not. */
export async function freeholdServerAt(target: ServerTarget): Promise<boolean> {
  try {
    const response = await fetch(`${target.base}/api/version`, { signal: AbortSignal.timeout(1500) });
    if (!response.ok) return false;
    const body = (await response.json().catch(() => ({}))) as { freehold?: unknown };
    // An Ollama on the same port answers too; its models are not this store's.
    return typeof body.freehold === "string" || response.headers.has("x-freehold-version");
  } catch {
    return false;
  }
}

/** Ollama's option names as freehold's library takes them. */
function libraryOptions(parameters: Parameters): Record<string, number | string[]> {
  const names: Record<string, string> = {
    temperature: "temperature",
    top_p: "topP",
    top_k: "topK",
    min_p: "minP",
    seed: "seed",
    repeat_penalty: "repeatPenalty",
    repeat_last_n: "repeatLastN",
    presence_penalty: "presencePenalty",
    frequency_penalty: "frequencyPenalty",
    stop: "stop",
  };
  const options: Record<string, number | string[]> = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (name === "num_predict") {
      if ((value as number) >= 0) options.maxTokens = value;
    } else if (names[name]) options[names[name]] = value;
  }
  return options;
}

async function* textOf(events: AsyncIterable<ChatEvent>): AsyncIterable<string> {
  for await (const event of events) {
    if (event.type === "text-delta") yield event.text;
    else if (event.type === "error") throw new Error(event.error.message);
  }
}

/** The model loaded in this process (as before issue 20, and when no server runs). */
export function localBackend(freehold: Freehold): RunBackend {
  return {
    async describe(model) {
      const details = await freehold.store.show(model).catch((error: unknown) => {
        // The engine's words for it (src/main.ts storeResolver), with what to do.
        if (error instanceof NotFoundError || (error instanceof StoreError && error.status === 400))
          throw new NotFoundError(
            `The model '${model}' does not exist here. See installed models with \`freehold list\`; add one with \`freehold import FILE --name ${model}\`, or start \`freehold serve\` to use its models.`,
            "model_not_found",
          );
        throw error;
      });
      const summary = details.manifest.summary;
      const template = details.manifest.profile?.template ?? summary.chatTemplate ?? "";
      return {
        name: details.name,
        where: "this process (no freehold server answered)",
        raw: template === "",
        template,
        synthetic: summary.synthetic,
        info: [
          ["architecture", summary.architecture],
          ["parameters", summary.parameterSize],
          ["quantization", summary.fileType],
          ["context length", String(summary.contextLength ?? "unknown")],
        ],
      };
    },
    async load(model) {
      const interactive = process.stderr.isTTY === true;
      const started = Date.now();
      const spinner = interactive
        ? setInterval(
            () =>
              process.stderr.write(`\r${pc.dim(`loading ${model} ${((Date.now() - started) / 1000).toFixed(1)}s`)}`),
            100,
          )
        : undefined;
      try {
        await freehold.engine.acquire(model);
      } finally {
        if (spinner) {
          clearInterval(spinner);
          process.stderr.write("\r\x1b[K");
        }
      }
    },
    answer({ model, raw, messages, prompt, parameters, signal }) {
      const options = { ...libraryOptions(parameters), ...(signal ? { signal } : {}) };
      return textOf(
        raw ? freehold.complete({ model, prompt, ...options }) : freehold.chat({ model, messages, ...options }),
      );
    },
    close: () => freehold.close(),
  };
}

/** Reads newline-delimited JSON from a streamed response. */
async function* ndjson(response: Response): AsyncIterable<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) yield JSON.parse(line) as Record<string, unknown>;
      newline = buffered.indexOf("\n");
    }
  }
  if (buffered.trim()) yield JSON.parse(buffered) as Record<string, unknown>;
}

/** A running freehold server, through its Ollama API (/api/show, /api/generate, /api/chat). */
export function serverBackend(target: ServerTarget): RunBackend {
  const post = async (path: string, body: unknown, signal?: AbortSignal) => {
    const response = await fetchServer(target, path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      // No overall timeout: an answer may stream for minutes. Ctrl-C aborts it.
      signal: signal ?? new AbortController().signal,
    });
    if (!response.ok) throw await serverFailure(response, target);
    return response;
  };
  return {
    async describe(model) {
      const shown = (await (await post("/api/show", { model })).json()) as {
        template?: string;
        details?: { family?: string; parameter_size?: string; quantization_level?: string };
        model_info?: Record<string, unknown>;
      };
      const template = shown.template ?? "";
      return {
        name: model,
        where: `the server at ${target.base}`,
        raw: template === "",
        template,
        synthetic: false,
        info: [
          ["architecture", shown.details?.family ?? "unknown"],
          ["parameters", shown.details?.parameter_size ?? "unknown"],
          ["quantization", shown.details?.quantization_level ?? "unknown"],
        ],
      };
    },
    async load(model) {
      // Ollama's way to load a model without answering: /api/generate with no prompt.
      await (await post("/api/generate", { model, prompt: "", stream: false })).json();
    },
    async *answer({ model, raw, messages, prompt, parameters, signal }) {
      const response = raw
        ? await post("/api/generate", { model, prompt, raw: true, stream: true, options: parameters }, signal)
        : await post("/api/chat", { model, messages, stream: true, options: parameters }, signal);
      for await (const line of ndjson(response)) {
        if (typeof line.error === "string") throw new Error(line.error);
        const text = raw ? line.response : (line.message as { content?: unknown } | undefined)?.content;
        if (typeof text === "string" && text) yield text;
      }
    },
    close: async () => {},
  };
}
