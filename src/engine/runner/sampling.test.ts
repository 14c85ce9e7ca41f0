import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Llama, LlamaGrammar } from "node-llama-cpp";
import type { GenerateRequest, ToolDefinition } from "../../core/chat.js";
import { evaluateOptions, GrammarCache, grammarFormat } from "./sampling.js";

describe("sampling options → node-llama-cpp", () => {
  test("defaults: temperature 0.8, no penalty, end-of-generation tokens yielded to the loop", () => {
    assert.deepEqual(evaluateOptions({}, []), { temperature: 0.8, yieldEogToken: true });
  });

  test("each option maps; a penalty reads the last repeatLastN generated tokens at each step", () => {
    const generated = [1, 2, 3, 4, 5];
    const options = evaluateOptions(
      { temperature: 0, topK: 5, topP: 0.9, minP: 0.1, seed: 7, repeatPenalty: 1.1, repeatLastN: 2 },
      generated as never,
    );
    assert.equal(options.temperature, 0);
    assert.equal(options.topK, 5);
    assert.equal(options.topP, 0.9);
    assert.equal(options.minP, 0.1);
    assert.equal(options.seed, 7);
    assert.equal(options.repeatPenalty?.penalty, 1.1);
    assert.equal(options.repeatPenalty?.maxPunishTokens, 2);
    assert.deepEqual(options.repeatPenalty?.punishTokens(), [4, 5]);
    generated.push(6);
    assert.deepEqual(options.repeatPenalty?.punishTokens(), [5, 6]);
  });

  test("presence or frequency alone turns the penalty on; neutral values leave it off", () => {
    assert.equal(evaluateOptions({ presencePenalty: 0.5 }, []).repeatPenalty?.presencePenalty, 0.5);
    assert.equal(evaluateOptions({ frequencyPenalty: 0.5 }, []).repeatPenalty?.frequencyPenalty, 0.5);
    assert.equal(evaluateOptions({ repeatPenalty: 1, presencePenalty: 0 }, []).repeatPenalty, undefined);
  });
});

describe("grammar", () => {
  const tool: ToolDefinition = { name: "f", parameters: { type: "object", properties: {} } };
  const chat = (extra: object): GenerateRequest =>
    ({ kind: "chat", model: "m", messages: [], sampling: {}, limits: {}, ...extra }) as GenerateRequest;

  test("a forced tool call's schema wins over the response format; auto tools use the response format", () => {
    assert.equal(grammarFormat(chat({ tools: [tool], toolChoice: "required" }))?.type, "json-schema");
    assert.deepEqual(grammarFormat(chat({ tools: [tool], responseFormat: { type: "json" } })), { type: "json" });
    assert.equal(grammarFormat(chat({})), undefined);
  });

  function fakeLlama(fail: boolean) {
    let compiled = 0;
    const llama = {
      getGrammarFor: async () => ({}) as LlamaGrammar,
      createGrammarForJsonSchema: (schema: unknown) => {
        compiled++;
        if (fail) throw new Error(`unsupported keyword in ${JSON.stringify(schema)}\nstack`);
        return Promise.resolve({} as LlamaGrammar);
      },
    } as unknown as Pick<Llama, "getGrammarFor" | "createGrammarForJsonSchema">;
    return { llama, compiled: () => compiled };
  }

  test("compiles once per schema; text needs none", async () => {
    const fake = fakeLlama(false);
    const cache = new GrammarCache(fake.llama, 2);
    assert.equal(await cache.grammarFor({ type: "text" }), undefined);
    const schema = { type: "json-schema", schema: { type: "object" } } as const;
    await cache.grammarFor(schema);
    await cache.grammarFor(schema);
    assert.equal(fake.compiled(), 1);
  });

  test("a schema that cannot become a grammar (thrown or rejected) is a 400 on response_format", async () => {
    const cache = new GrammarCache(fakeLlama(true).llama);
    await assert.rejects(cache.grammarFor({ type: "json-schema", schema: { x: 1 } }), (error: Error) => {
      const e = error as Error & { status: number; code: string; param: string };
      assert.equal(e.status, 400);
      assert.equal(e.code, "invalid_schema");
      assert.equal(e.param, "response_format");
      assert.doesNotMatch(e.message, /stack/);
      return true;
    });
  });
});
