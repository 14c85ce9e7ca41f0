import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";
import { disconnectMidStream, longStream, startStream } from "./helpers/streams.js";

interface PsBody {
  models: { name: string; details: { active_requests: number; queued_requests: number; state: string } }[];
}

async function ps(server: ServerProcess): Promise<PsBody["models"]> {
  return ((await (await fetch(`${server.url}/api/ps`)).json()) as PsBody).models;
}

describe("many requests on one model", { skip: storiesModelMissing }, () => {
  describe("8 clients x 3 multi-turn chats on 4 slots", () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess({ models: { stories: storiesModelPath }, args: ["--parallel", "4"] });
    });
    after(() => server?.dispose());

    test("all complete with well-formed answers, and follow-up turns reuse the cached prefix", async () => {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const started = Date.now();
      const cachedOnLaterTurns: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, clientIndex) => {
          for (let chat = 0; chat < 3; chat++) {
            const messages: OpenAI.ChatCompletionMessageParam[] = [];
            for (let turn = 0; turn < 3; turn++) {
              messages.push({
                role: "user",
                content: `Client ${clientIndex} chat ${chat} turn ${turn}: tell me about Lily.`,
              });
              const answer = await client.chat.completions.create({
                model: "stories",
                messages,
                max_tokens: 12,
                temperature: 0.7,
                seed: clientIndex,
              });
              assert.equal(answer.object, "chat.completion");
              assert.equal(answer.choices.length, 1);
              assert.equal(answer.choices[0]!.message.role, "assistant");
              assert.ok(["stop", "length"].includes(answer.choices[0]!.finish_reason));
              assert.equal(answer.usage!.total_tokens, answer.usage!.prompt_tokens + answer.usage!.completion_tokens);
              if (turn > 0) cachedOnLaterTurns.push(answer.usage!.prompt_tokens_details?.cached_tokens ?? 0);
              messages.push({ role: "assistant", content: answer.choices[0]!.message.content ?? "" });
            }
          }
        }),
      );
      assert.ok(Date.now() - started < 60_000);
      // Several conversations share 4 slots, so not every follow-up finds its prefix, but most do.
      const reused = cachedOnLaterTurns.filter((cached) => cached > 10).length;
      assert.ok(
        reused >= cachedOnLaterTurns.length / 4,
        `prefix reused on ${reused} of ${cachedOnLaterTurns.length} follow-up turns`,
      );
      const models = await ps(server);
      assert.equal(models[0]!.details.active_requests, 0);
      assert.equal(models[0]!.details.queued_requests, 0);
    });

    test("a follow-up turn on an idle slot reports its cached prompt tokens", async () => {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const messages: OpenAI.ChatCompletionMessageParam[] = [
        { role: "user", content: "A long first question about a little girl and her dog." },
      ];
      const first = await client.chat.completions.create({ model: "stories", messages, max_tokens: 8, temperature: 0 });
      messages.push(
        { role: "assistant", content: first.choices[0]!.message.content ?? "" },
        { role: "user", content: "And then?" },
      );
      const second = await client.chat.completions.create({
        model: "stories",
        messages,
        max_tokens: 8,
        temperature: 0,
      });
      const cached = second.usage!.prompt_tokens_details?.cached_tokens ?? 0;
      assert.ok(
        cached >= first.usage!.prompt_tokens,
        `cached ${cached} of the first turn's ${first.usage!.prompt_tokens} prompt tokens`,
      );
    });

    test("a request arriving while other streams run starts at once, though every slot holds someone's cache", async () => {
      // Give every slot a cached history, so a newcomer would have to trim one while the others generate.
      for (const letter of ["P", "Q", "R", "S", "T"]) {
        await postJson(`${server.url}/v1/completions`, {
          model: "stories",
          prompt: `${letter}. A story about a cat`,
          max_tokens: 4,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const streams = await Promise.all(
        [..."UVW"].map((letter) =>
          startStream(`${server.url}/v1/completions`, { ...longStream, prompt: `${letter}. Once upon a time` }),
        ),
      );
      const started = Date.now();
      const response = await postJson(`${server.url}/v1/completions`, {
        model: "stories",
        prompt: "Z. Something new entirely",
        max_tokens: 5,
      });
      assert.equal(response.status, 200);
      await response.json();
      const waited = Date.now() - started;
      await Promise.all(streams.map((stream) => stream.hangUp()));
      assert.ok(waited < 1000, `the newcomer waited ${waited} ms for the running streams`);
    });

    test("100 clients that disconnect after their first token leave no busy slot", async () => {
      await disconnectMidStream(`${server.url}/v1/completions`, 100);
      const deadline = Date.now() + 1000;
      let active = -1;
      while (Date.now() < deadline) {
        active = (await ps(server))[0]!.details.active_requests;
        if (active === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(active, 0);
      const started = Date.now();
      const response = await postJson(`${server.url}/v1/completions`, {
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 10,
        temperature: 0,
      });
      assert.equal(response.status, 200);
      assert.ok(Date.now() - started < 1000);
    });
  });

  describe("the bounded queue", () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess({
        models: { stories: storiesModelPath },
        args: ["--parallel", "1", "--max-queue", "1"],
        env: { FREEHOLD_QUEUE_TIMEOUT: "1.5" },
      });
    });
    after(() => server?.dispose());

    test("past the queue: an immediate 503 with Retry-After in OpenAI's shape; a queued client that leaves, leaves", async () => {
      const running = await startStream(`${server.url}/v1/completions`, longStream);

      const waiting = new AbortController();
      const queued = postJson(
        `${server.url}/v1/completions`,
        { model: "stories", prompt: "x", max_tokens: 2 },
        { signal: waiting.signal },
      ).catch((error: Error) => error);
      let models = await ps(server);
      for (let i = 0; i < 20 && models[0]!.details.queued_requests === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        models = await ps(server);
      }
      assert.equal(models[0]!.details.queued_requests, 1);

      const started = Date.now();
      const rejected = await postJson(`${server.url}/v1/chat/completions`, {
        model: "stories",
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(rejected.status, 503);
      assert.ok(Date.now() - started < 500, "refused at once");
      assert.match(rejected.headers.get("retry-after") ?? "", /^\d+$/);
      const body = (await rejected.json()) as { error: { code: string; type: string; message: string } };
      assert.equal(body.error.code, "queue_full");
      assert.match(body.error.message, /busy/);

      waiting.abort();
      await queued;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal((await ps(server))[0]!.details.queued_requests, 0, "the client that gave up left the queue");

      await running.hangUp();
    });

    test("a request that waits past the queue timeout gets 503 queue_timeout", async () => {
      const running = await startStream(`${server.url}/v1/completions`, longStream);
      const started = Date.now();
      const timedOut = await postJson(`${server.url}/v1/completions`, { model: "stories", prompt: "x", max_tokens: 2 });
      assert.equal(timedOut.status, 503);
      assert.ok(Date.now() - started >= 1400);
      const body = (await timedOut.json()) as { error: { code: string } };
      assert.equal(body.error.code, "queue_timeout");
      assert.ok(timedOut.headers.get("retry-after"));
      await running.hangUp();
    });
  });
});
