// llama.cpp's own llama-server (LLAMA_SERVER=/path/to/llama-server), timed through its OpenAI-compatible API.
import { setTimeout as sleep } from "node:timers/promises";
import { Child, freePort } from "./processes.js";
import { getStatus, timedChat, timedCompletion } from "./sse.js";
import type { BenchSystem } from "./system.js";

export async function startLlamaServer(options: {
  binary: string;
  modelPath: string;
  threads: number;
  /** Total KV context, shared by the slots: with `parallel` slots each gets contextSize / parallel. */
  contextSize: number;
  /** -np: slots. Unset, llama-server's default (auto: 4 slots in one unified KV pool of contextSize). */
  parallel?: number;
  /** logit_bias for every request (see ModelSpec.llamaServerLogitBias). */
  logitBias?: Record<string, number> | undefined;
}): Promise<BenchSystem> {
  const port = await freePort();
  const threads = String(options.threads);
  const child = new Child(
    options.binary,
    [
      ["-m", options.modelPath],
      ["--host", "127.0.0.1", "--port", String(port)],
      ["-t", threads, "-tb", threads],
      ["-c", String(options.contextSize)],
      // Unset, slots are left at llama-server's default (4, sharing one KV pool), as freehold's are at its default (4).
      // Set, each slot gets its own KV cache and freehold's batch size: what freehold's llama-server engine passes
      // (-np N -c N × per-slot context --no-kv-unified -b 512; -fa auto and f16 KV are both sides' defaults).
      options.parallel === undefined ? [] : ["-np", String(options.parallel), "--no-kv-unified", "-b", "512"],
      ["--no-webui"],
    ].flat(),
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    // /health answers 503 while the model loads, 200 once it can serve.
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.process.exitCode !== null || child.process.signalCode !== null)
        throw new Error(`llama-server exited (${child.process.exitCode ?? child.process.signalCode})\n${child.tail()}`);
      if ((await getStatus(`${url}/health`)) === 200) break;
      if (Date.now() > deadline) throw new Error(`llama-server did not become healthy in 120 s\n${child.tail()}`);
      await sleep(100);
    }
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    engine: "llama-server",
    requested: options.threads,
    threads: options.threads,
    url,
    run: (prompt, tokens) =>
      timedCompletion(url, {
        prompt,
        n_predict: tokens,
        max_tokens: tokens,
        temperature: 0,
        ignore_eos: true,
        cache_prompt: false,
        ...(options.logitBias ? { logit_bias: options.logitBias } : {}),
        stream: true,
        stream_options: { include_usage: true },
      }),
    chat: (messages, tokens) =>
      timedChat(url, {
        messages,
        n_predict: tokens,
        max_tokens: tokens,
        temperature: 0,
        ignore_eos: true,
        cache_prompt: true,
        ...(options.logitBias ? { logit_bias: options.logitBias } : {}),
        stream: true,
        stream_options: { include_usage: true },
      }),
    close: () => child.stop(),
  };
}
