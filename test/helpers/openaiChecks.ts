import assert from "node:assert/strict";
import type OpenAI from "openai";

/**
 * Checks of the OpenAI API on stories260K that every engine must pass alike: server-openai.test.ts runs them on the
 * default engine, engine-parity.test.ts on each engine.
 */

/** At temperature 0 "Once upon a time" continues so (10 tokens). */
export const LILY = ", there was a little girl named Lily";

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
