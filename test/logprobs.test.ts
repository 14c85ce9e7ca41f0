import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, readSse, type ServerProcess, startServerProcess } from "./helpers/server.js";

interface Alternative {
  token: string;
  logprob: number;
  bytes: number[];
}
interface Entry extends Alternative {
  top_logprobs: Alternative[];
}

function checkEntry(entry: Entry, alternatives: number): void {
  assert.ok(entry.logprob <= 0 && entry.logprob >= -9999, `logprob ${entry.logprob}`);
  assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
  assert.equal(entry.top_logprobs.length, alternatives);
  for (let i = 1; i < entry.top_logprobs.length; i++)
    assert.ok(entry.top_logprobs[i - 1]!.logprob >= entry.top_logprobs[i]!.logprob, "alternatives most likely first");
}

describe("logprobs on stories260K (OpenAI chat and completions, Ollama)", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  let client: OpenAI;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await server?.dispose();
  });

  const chat = {
    model: "stories",
    messages: [{ role: "user" as const, content: "Once upon a time" }],
    max_tokens: 12,
    temperature: 0,
  };

  test("chat: one entry per generated token, their text is the answer, greedy picks the top alternative", async () => {
    const answer = await client.chat.completions.create({ ...chat, logprobs: true, top_logprobs: 3 });
    const choice = answer.choices[0]!;
    assert.equal(choice.finish_reason, "length");
    const content = choice.logprobs!.content as Entry[];
    assert.equal(content.length, answer.usage!.completion_tokens);
    assert.equal(content.map((entry) => entry.token).join(""), choice.message.content);
    for (const entry of content) {
      checkEntry(entry, 3);
      // At temperature 0 the chosen token is the most likely one.
      assert.equal(entry.top_logprobs[0]!.token, entry.token);
      assert.equal(entry.top_logprobs[0]!.logprob, entry.logprob);
    }
    const plain = await client.chat.completions.create(chat);
    assert.equal(plain.choices[0]!.logprobs, null);
    assert.equal(plain.choices[0]!.message.content, choice.message.content);
  });

  test("chat stream: chunks carry the logprobs of their own text, the same as the whole answer", async () => {
    const whole = await client.chat.completions.create({ ...chat, logprobs: true, top_logprobs: 2 });
    const stream = await client.chat.completions.create({ ...chat, logprobs: true, top_logprobs: 2, stream: true });
    const entries: Entry[] = [];
    let text = "";
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      const mine = (choice.logprobs?.content ?? []) as Entry[];
      entries.push(...mine);
      if (choice.delta.content) {
        text += choice.delta.content;
        assert.ok(choice.delta.content.endsWith(mine.map((entry) => entry.token).join("")));
      }
    }
    assert.equal(text, whole.choices[0]!.message.content);
    assert.deepEqual(entries, whole.choices[0]!.logprobs!.content);
  });

  test("chat with a stop sequence: the stop's tokens have no entries", async () => {
    const whole = await client.chat.completions.create({ ...chat, max_tokens: 30 });
    const text = whole.choices[0]!.message.content!;
    const stop = text.slice(10, 14);
    const stopped = await client.chat.completions.create({ ...chat, max_tokens: 30, stop: [stop], logprobs: true });
    const choice = stopped.choices[0]!;
    assert.equal(choice.message.content, text.slice(0, text.indexOf(stop)));
    const joined = (choice.logprobs!.content as Entry[]).map((entry) => entry.token).join("");
    assert.ok(choice.message.content!.startsWith(joined), `${JSON.stringify(joined)} is not a prefix`);
    assert.ok(!joined.includes(stop));
    for (const entry of choice.logprobs!.content as Entry[]) checkEntry(entry, 0);
  });

  test("completions: the legacy logprobs object (tokens, token_logprobs, top_logprobs, text_offset)", async () => {
    const request = { model: "stories", prompt: "Once upon a time", max_tokens: 10, temperature: 0, logprobs: 2 };
    const answer = await client.completions.create(request);
    const choice = answer.choices[0]!;
    assert.equal(choice.text, ", there was a little girl named Lily");
    const logprobs = choice.logprobs!;
    assert.equal(logprobs.tokens!.length, 10);
    assert.equal(logprobs.tokens!.join(""), choice.text);
    assert.equal(logprobs.token_logprobs!.length, 10);
    assert.equal(logprobs.top_logprobs!.length, 10);
    let offset = 0;
    logprobs.tokens!.forEach((token, i) => {
      assert.equal(logprobs.text_offset![i], offset);
      offset += token.length;
      const top = logprobs.top_logprobs![i]!;
      assert.ok(Object.keys(top).length <= 2 && Object.keys(top).length >= 1);
      assert.equal(Math.max(...Object.values(top)), logprobs.token_logprobs![i]);
    });
    const streamed = await postJson(`${server.url}/v1/completions`, { ...request, stream: true });
    const chunks = (await readSse(streamed)).filter((data) => data !== "[DONE]").map((data) => JSON.parse(data));
    const tokens = chunks.flatMap((chunk) => chunk.choices[0]?.logprobs?.tokens ?? []);
    const offsets = chunks.flatMap((chunk) => chunk.choices[0]?.logprobs?.text_offset ?? []);
    assert.deepEqual(tokens, logprobs.tokens);
    assert.deepEqual(offsets, logprobs.text_offset);
  });

  test("bad logprobs requests are 400s naming the field", async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ ...chat, top_logprobs: 2 }, "/v1/chat/completions", "top_logprobs"],
      [{ ...chat, logprobs: true, top_logprobs: 21 }, "/v1/chat/completions", "top_logprobs"],
      [{ ...chat, logprobs: "yes" }, "/v1/chat/completions", "logprobs"],
      [{ model: "stories", prompt: "Once", logprobs: -1 }, "/v1/completions", "logprobs"],
    ];
    for (const [body, path, param] of cases) {
      const response = await postJson(`${server.url}${path}`, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = (await response.json()) as { error: { param: string; message: string } };
      assert.equal(error.error.param, param, error.error.message);
    }
    const ollama = await postJson(`${server.url}/api/chat`, { ...chat, top_logprobs: 2, stream: false });
    assert.equal(ollama.status, 400);
    assert.match(((await ollama.json()) as { error: string }).error, /top_logprobs/);
  });

  test("Ollama /api/chat and /api/generate: logprobs per token, streamed and not", async () => {
    const body = {
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 10 },
      logprobs: true,
      top_logprobs: 2,
    };
    const whole = await postJson(`${server.url}/api/generate`, { ...body, stream: false });
    const answer = (await whole.json()) as { response: string; logprobs: Entry[]; eval_count: number };
    assert.equal(answer.response, ", there was a little girl named Lily");
    assert.equal(answer.logprobs.length, answer.eval_count);
    assert.equal(answer.logprobs.map((entry) => entry.token).join(""), answer.response);
    for (const entry of answer.logprobs) checkEntry(entry, 2);
    const streamed = await postJson(`${server.url}/api/generate`, body);
    const lines = (await streamed.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { logprobs?: Entry[] });
    assert.deepEqual(
      lines.flatMap((line) => line.logprobs ?? []),
      answer.logprobs,
    );
    const chatAnswer = await postJson(`${server.url}/api/chat`, {
      model: "stories",
      messages: [{ role: "user", content: "Once upon a time" }],
      options: { temperature: 0, num_predict: 8 },
      logprobs: true,
      stream: false,
    });
    const parsed = (await chatAnswer.json()) as { message: { content: string }; logprobs: Entry[] };
    assert.equal(parsed.logprobs.map((entry) => entry.token).join(""), parsed.message.content);
  });
});
