import assert from "node:assert/strict";
import type OpenAI from "openai";
import { postJson, readSse } from "./server.js";
import { disconnectMidStream, longStream, readToEnd, startStream } from "./streams.js";

/**
 * Checks of the OpenAI API on stories260K that every engine must pass alike: server-openai.test.ts runs them on the
 * default engine, engine-parity.test.ts on each engine. Each is written here once; a test file adds only what is
 * particular to it.
 */

/** At temperature 0 "Once upon a time" continues so (10 tokens). */
export const LILY = ", there was a little girl named Lily";

/**
 * Asks `model` (stories260K under the name the test gave it) for the temperature-0 continuation of "Once upon a
 * time" (10 tokens), checks it is LILY and returns it.
 */
export async function completeLily(client: OpenAI, model = "stories"): Promise<OpenAI.Completion> {
  const completion = await client.completions.create({
    model,
    prompt: "Once upon a time",
    max_tokens: 10,
    temperature: 0,
  });
  assert.equal(completion.choices[0]!.text, LILY);
  return completion;
}

/** The temperature-0 completion stops at max_tokens with exact usage: BOS + 4 prompt tokens, 10 generated. */
export async function checkTemperatureZero(client: OpenAI): Promise<OpenAI.Completion> {
  const completion = await completeLily(client);
  assert.equal(completion.choices[0]!.finish_reason, "length");
  assert.equal(completion.usage?.prompt_tokens, 5);
  assert.equal(completion.usage?.completion_tokens, 10);
  return completion;
}

/** A stop sequence ends the answer with none of it, whole or split across streamed pieces. */
export async function checkStopSequences(client: OpenAI): Promise<void> {
  const completion = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: 30,
    temperature: 0,
    stop: ["Lily"],
  });
  assert.equal(completion.choices[0]!.text, ", there was a little girl named ");
  assert.equal(completion.choices[0]!.finish_reason, "stop");
  const stream = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: 30,
    temperature: 0,
    stop: [" named Li"],
    stream: true,
  });
  const pieces: string[] = [];
  for await (const chunk of stream) pieces.push(chunk.choices[0]?.text ?? "");
  assert.equal(pieces.join(""), ", there was a little girl");
}

/** A streamed completion's text is the whole answer's, and both continue as llama.cpp does. */
export async function checkStreamedCompletion(client: OpenAI): Promise<void> {
  const request = { model: "stories", prompt: "Once upon a time", max_tokens: 40, temperature: 0 };
  const whole = await client.completions.create(request);
  const stream = await client.completions.create({ ...request, stream: true });
  let streamed = "";
  for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? "";
  assert.equal(streamed, whole.choices[0]!.text);
  assert.ok(streamed.startsWith(LILY));
}

/** The chat request whose stream checkChatStreamWireShape reads (5 tokens at temperature 0, usage included). */
export const streamedChat = {
  model: "stories",
  messages: [{ role: "user" as const, content: "Once upon a time" }],
  max_tokens: 5,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
};

/** A chat.completion.chunk as checkChatStreamWireShape has checked it. */
export interface ChatChunk {
  id: string;
  choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

/**
 * Streams `streamedChat` from the server at `url` and checks the wire: role first, one id, finish_reason on the last
 * choice only, a usage chunk with no choices, then [DONE]. Returns the chunks (JSON-parsed, [DONE] left out).
 */
export async function checkChatStreamWireShape(url: string): Promise<ChatChunk[]> {
  const response = await postJson(`${url}/v1/chat/completions`, streamedChat);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const frames = await readSse(response);
  assert.equal(frames.at(-1), "[DONE]");
  const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  for (const chunk of chunks) assert.equal(chunk.object, "chat.completion.chunk");
  const usageChunk = chunks.at(-1);
  assert.deepEqual(usageChunk.choices, []);
  assert.equal(usageChunk.usage.completion_tokens, 5);
  assert.equal(usageChunk.usage.total_tokens, usageChunk.usage.prompt_tokens + 5);
  const last = chunks.at(-2);
  assert.equal(last.choices[0].finish_reason, "length");
  for (const chunk of chunks.slice(0, -2)) {
    assert.equal(chunk.choices[0].finish_reason, null);
    assert.equal(chunk.usage, null);
  }
  return chunks;
}

/**
 * `clients` clients hang up on long streams one after another; then the next answer must be right and start within
 * `withinMs`, which it cannot while a cut-off generation still holds a slot.
 */
export async function checkDisconnectsFreeSlots(
  url: string,
  client: OpenAI,
  { clients, withinMs }: { clients: number; withinMs: number },
): Promise<void> {
  await disconnectMidStream(`${url}/v1/completions`, clients, { ...longStream, temperature: 0 });
  const started = Date.now();
  await completeLily(client);
  assert.ok(Date.now() - started < withinMs, `the next request waited ${Date.now() - started} ms`);
}

/** A runner as /health lists it. */
export interface HealthModel {
  name: string;
  pid: number;
  restarts: number;
}

async function healthModels(url: string): Promise<HealthModel[]> {
  return ((await (await fetch(`${url}/health`)).json()) as { models: HealthModel[] }).models;
}

/**
 * Kills the process that hosts the model with SIGKILL while an answer streams (`victim` picks it, given the runner's
 * pid), then checks: the stream ends with runner_crashed, the runner restarts once, the next answer is right.
 * Returns the stream's text after the kill and the runner as it was before, for checks particular to an engine.
 */
export async function checkCrashMidStream(
  url: string,
  client: OpenAI,
  victim: (runnerPid: number) => number | undefined,
): Promise<{ rest: string; runner: HealthModel }> {
  await client.completions.create({ model: "stories", prompt: "x", max_tokens: 1 });
  const runner = (await healthModels(url)).find((m) => m.name === "stories:latest");
  assert.ok(runner?.pid, "runner pid is reported");
  const pid = victim(runner.pid);
  assert.ok(pid, "the process hosting the model is found");
  const stream = await startStream(`${url}/v1/completions`, { ...longStream, temperature: 0 });
  assert.equal(stream.response.status, 200);
  process.kill(pid, "SIGKILL");
  const rest = await readToEnd(stream.reader);
  assert.match(rest, /"code":"runner_crashed"/);
  await completeLily(client);
  assert.equal((await healthModels(url))[0]!.restarts, runner.restarts + 1);
  return { rest, runner };
}
