import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { childPids, engines } from "./helpers/engines.js";
import * as checks from "./helpers/openaiChecks.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * The engine's behaviour as clients see it, on both runner kinds: the same text at temperature 0 (both are
 * llama.cpp), streaming, stops, usage, cancellation, the queue's 503s and crash recovery. Whatever differs between
 * node-llama-cpp and llama-server stays below the runner.
 */

for (const engine of engines) {
  describe(`engine ${engine.name}`, { skip: storiesModelMissing || engine.skip }, () => {
    let server: ServerProcess;
    let client: OpenAI;
    before(async () => {
      server = await startServerProcess({ models: { stories: storiesModelPath }, env: engine.env });
      client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
    });
    after(() => server?.dispose());

    test("temperature 0 continues as llama.cpp does, with exact usage; ps names the engine", async () => {
      await checks.checkTemperatureZero(client);
      const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as { models: { details: { engine: string } }[] };
      assert.equal(ps.models[0]?.details.engine, engine.name);
    });

    test("streamed text equals the whole answer (completions and chat), and the stream ends with usage", async () => {
      await checks.checkStreamedCompletion(client);
      const chunks = await checks.checkChatStreamWireShape(server.url);
      const { stream: _stream, stream_options: _options, ...request } = checks.streamedChat;
      const chat = await client.chat.completions.create(request);
      const chatStreamed = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
      assert.equal(chatStreamed, chat.choices[0]!.message.content);
      assert.equal(chat.usage?.prompt_tokens, chunks.at(-1)!.usage!.prompt_tokens);
    });

    test("stop sequences end the answer without leaking any part of them; finish_reason stop", async () => {
      await checks.checkStopSequences(client);
    });

    test("logit_bias applies (a +100 token repeats; -100 bans it) and is checked against the vocabulary", async () => {
      const ask = (logit_bias: Record<string, number>) =>
        postJson(`${server.url}/v1/completions`, {
          model: "stories",
          prompt: "Once upon a time",
          max_tokens: 3,
          temperature: 0,
          logit_bias,
        });
      // Token 300 is " ha" in stories260K's vocabulary; +100 makes it every pick (the answer's leading space may go).
      const forced = (await (await ask({ 300: 100 })).json()) as { choices: { text: string }[] };
      assert.equal(forced.choices[0]!.text.trimStart(), "ha ha ha");
      // Banning the first token temperature 0 picks changes the answer's start.
      const firstToken = await client.completions.create({
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 1,
        temperature: 0,
      });
      assert.equal(firstToken.choices[0]!.text, ",");
      const banned = (await (await ask({ 300: -100, 432: -100 })).json()) as { choices: { text: string }[] };
      assert.ok(!banned.choices[0]!.text.startsWith(","), `text ${JSON.stringify(banned.choices[0]!.text)}`);
      const bad: Record<string, number>[] = [{ 2: 5 }, { 100000: 5 }, { "-1": 5 }, { x: 5 }, { 300: 101 }];
      for (const bias of bad) {
        const refused = await ask(bias);
        assert.equal(refused.status, 400, JSON.stringify(bias));
        const body = (await refused.json()) as { error: { param: string } };
        assert.ok(body.error.param.startsWith("logit_bias"), body.error.param);
      }
    });

    test("embeddings: one unit vector per input, the same input the same vector, usage counted", async () => {
      const answer = await client.embeddings.create({
        model: "stories",
        input: ["Once upon a time", "a little girl named Lily", "Once upon a time"],
      });
      assert.equal(answer.data.length, 3);
      const [a, b, c] = answer.data.map((item) => item.embedding);
      assert.equal(a!.length, 64); // stories260K's embedding length
      assert.ok(Math.abs(Math.hypot(...a!) - 1) < 1e-4);
      assert.ok(a!.every((value, i) => Math.abs(value - c![i]!) < 1e-5));
      assert.ok(a!.some((value, i) => Math.abs(value - b![i]!) > 1e-3));
      assert.ok((answer.usage?.prompt_tokens ?? 0) >= 10, `prompt_tokens ${answer.usage?.prompt_tokens}`);
    });

    test("a follow-up with the same prefix reports cached prompt tokens", async () => {
      const prompt = "Once upon a time, there was a little girl named Lily. She loved to play";
      await client.completions.create({ model: "stories", prompt, max_tokens: 2, temperature: 0 });
      const again = await client.completions.create({
        model: "stories",
        prompt: `${prompt} outside`,
        max_tokens: 2,
        temperature: 0,
      });
      const cached = (again.usage as { prompt_tokens_details?: { cached_tokens?: number } }).prompt_tokens_details
        ?.cached_tokens;
      assert.ok((cached ?? 0) >= 10, `cached_tokens ${cached}`);
    });

    test("20 clients that disconnect mid-stream leave the slots free: the next answer is prompt and right", async () => {
      await checks.checkDisconnectsFreeSlots(server.url, client, { clients: 20, withinMs: 2000 });
    });

    test("the engine's process killed mid-stream: the client gets runner_crashed, the next request succeeds", async () => {
      // On llama-server the model lives in the runner's child: kill that one, as a native crash would.
      const { runner } = await checks.checkCrashMidStream(server.url, client, (pid) =>
        engine.name === "llama-server" ? childPids(pid)[0] : pid,
      );
      if (engine.name === "llama-server") {
        // The crashed runner's llama-server is gone too (none left behind).
        await new Promise((resolve) => setTimeout(resolve, 200));
        assert.deepEqual(childPids(runner.pid), []);
      }
    });
  });
}
