import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

const answerSchema = {
  type: "object",
  properties: {
    answer: { type: "string", enum: ["yes", "no", "maybe"] },
    confident: { type: "boolean" },
    note: { type: "string", maxLength: 16 },
    tags: { type: "array", items: { type: "string", enum: ["a", "b"] }, maxItems: 3 },
  },
  required: ["answer", "confident", "note", "tags"],
  additionalProperties: false,
} as const;

/** Checks a value against answerSchema by hand, so the test does not trust the code under test. */
function assertMatchesAnswerSchema(text: string): void {
  const value = JSON.parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(value).sort(), ["answer", "confident", "note", "tags"]);
  assert.ok(["yes", "no", "maybe"].includes(value.answer as string), `answer ${String(value.answer)}`);
  assert.equal(typeof value.confident, "boolean");
  assert.equal(typeof value.note, "string");
  assert.ok((value.note as string).length <= 16);
  assert.ok(
    Array.isArray(value.tags) && value.tags.length <= 3 && value.tags.every((tag) => tag === "a" || tag === "b"),
  );
}

describe("structured output enforced by grammar", () => {
  let server: ServerProcess;
  let client: OpenAI;
  const files = temporaryDirectory();
  before(async () => {
    const tiny = join(files.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "q8_0", seed: 3 });
    server = await startServerProcess({ models: storiesModelMissing ? { tiny } : { tiny, stories: storiesModelPath } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });

  const model = () => (storiesModelMissing ? "tiny" : "stories");

  test("response_format json_schema: even a tiny model's answer parses and matches the schema", async () => {
    for (const seed of [1, 2, 3]) {
      const answer = await client.chat.completions.create({
        model: model(),
        messages: [{ role: "user", content: "Is the sky blue?" }],
        temperature: 0.8,
        seed,
        max_tokens: 120,
        response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema: answerSchema } },
      });
      assert.equal(answer.choices[0]!.finish_reason, "stop", "the answer ends at the closing brace");
      assertMatchesAnswerSchema(answer.choices[0]!.message.content ?? "");
    }
  });

  test("streamed json_schema answers join into valid JSON", async () => {
    const stream = await client.chat.completions.create({
      model: model(),
      messages: [{ role: "user", content: "Answer in JSON." }],
      temperature: 0.7,
      seed: 9,
      max_tokens: 120,
      stream: true,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: answerSchema } },
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assertMatchesAnswerSchema(text);
  });

  test("Ollama's format with a schema, and json_object mode", async () => {
    const ollama = new Ollama({ host: server.url });
    const reply = await ollama.chat({
      model: model(),
      messages: [{ role: "user", content: "Is the sky blue?" }],
      format: answerSchema,
      stream: false,
      options: { temperature: 0.5, seed: 4, num_predict: 120 },
    });
    assertMatchesAnswerSchema(reply.message.content);
    const object = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "JSON please" }],
      temperature: 0,
      max_tokens: 300,
      response_format: { type: "json_object" },
    });
    const content = object.choices[0]!.message.content ?? "";
    assert.match(content, /^\s*\{/, "a JSON object starts the answer");
    if (object.choices[0]!.finish_reason === "stop") assert.equal(typeof JSON.parse(content), "object");
  });

  test("a schema that cannot be enforced is a 400 naming where, before any generation", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ type: "string", pattern: "^a+$" }, /\/pattern: the keyword "pattern" cannot be enforced/],
      [{ type: "object", properties: { n: { type: "integer", minimum: 1 } } }, /\/properties\/n\/minimum/],
      [{ type: "decimal" }, /unknown type "decimal"/],
      [{ $ref: "https://example.com/s.json" }, /only local references/],
    ];
    for (const [schema, pattern] of cases) {
      const started = Date.now();
      const response = await postJson(`${server.url}/v1/chat/completions`, {
        model: model(),
        messages: [{ role: "user", content: "x" }],
        response_format: { type: "json_schema", json_schema: { name: "s", schema } },
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as { error: { param: string; message: string } };
      assert.equal(body.error.param, "response_format");
      assert.match(body.error.message, pattern);
      assert.ok(Date.now() - started < 1000);
    }
    const huge = {
      type: "object",
      properties: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`p${i}`, { type: "string" }])),
    };
    const started = Date.now();
    const response = await postJson(`${server.url}/api/chat`, {
      model: model(),
      messages: [{ role: "user", content: "x" }],
      format: huge,
    });
    assert.equal(response.status, 400);
    assert.match(
      ((await response.json()) as { error: string }).error,
      /^format at \/properties\/p\d+: the schema is too large/,
    );
    assert.ok(Date.now() - started < 1000);
  });
});
