import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Token } from "node-llama-cpp";
import type { GenerateRequest } from "../../core/chat.js";
import { buildPrompt, type ChatTemplate, checkPrompt, FALLBACK_STOP, type PromptModel, toHistory } from "./prompt.js";

/** A tokenizer with one token per character (code point = id); BOS is 1 when asked for. */
function fakeModel(bos: boolean): PromptModel & { seen: string[] } {
  const seen: string[] = [];
  const tokenize = (text: string) => {
    seen.push(text);
    return [...text].map((c) => c.codePointAt(0) as Token);
  };
  return {
    seen,
    tokenize: tokenize as PromptModel["tokenize"],
    tokenizer: tokenize as PromptModel["tokenizer"],
    tokens: { bos: 1 as Token, shouldPrependBosToken: bos },
  };
}

const completion = (prompt: string | number[]): GenerateRequest => ({
  kind: "completion",
  model: "m",
  prompt,
  sampling: {},
  limits: {},
});

describe("prompt stage", () => {
  test("history: roles map to node-llama-cpp's items, with an empty model turn to answer in", () => {
    assert.deepEqual(
      toHistory([
        { role: "system", content: "s" },
        { role: "user", content: "u" },
        { role: "assistant", content: "a" },
        { role: "tool", content: "t" },
      ]),
      [
        { type: "system", text: "s" },
        { type: "user", text: "u" },
        { type: "model", response: ["a"] },
        { type: "user", text: "t" },
        { type: "model", response: [] },
      ],
    );
  });

  test("a completion's text gets BOS when the model wants one; token ids are used as they are", () => {
    const template: ChatTemplate = { format: "jinja" };
    assert.deepEqual(buildPrompt(fakeModel(true), template, completion("ab")), { tokens: [1, 97, 98], stops: [] });
    assert.deepEqual(buildPrompt(fakeModel(false), template, completion("ab")).tokens, [97, 98]);
    assert.deepEqual(buildPrompt(fakeModel(true), template, completion([5, 6])).tokens, [5, 6]);
  });

  test("chat through the ChatML fallback: the template's text, and its end marker as a stop", async () => {
    const nlc = await import("node-llama-cpp");
    const model = fakeModel(false);
    const template: ChatTemplate = { wrapper: new nlc.ChatMLChatWrapper(), format: "chatml-fallback" };
    const request: GenerateRequest = {
      kind: "chat",
      model: "m",
      messages: [{ role: "user", content: "Hi" }],
      sampling: {},
      limits: {},
    };
    const prompt = buildPrompt(model, template, request);
    const text = String.fromCodePoint(...prompt.tokens);
    assert.match(text, /<\|im_start\|>user\nHi<\|im_end\|>\n<\|im_start\|>assistant\n$/);
    assert.ok(prompt.stops.includes(FALLBACK_STOP));
  });

  test("a template that cannot be used is a 400 that says to use completions", () => {
    const request: GenerateRequest = { kind: "chat", model: "m", messages: [], sampling: {}, limits: {} };
    assert.throws(
      () => buildPrompt(fakeModel(false), { format: "template-error", error: "bad tag" }, request),
      (e: Error & { status?: number; code?: string }) =>
        e.status === 400 && e.code === "chat_template_error" && /bad tag.*\/v1\/completions/.test(e.message),
    );
  });

  test("checks: token ids outside the vocabulary, and prompts that leave no room", () => {
    const fails = (tokens: number[], code: string, param: string) =>
      assert.throws(
        () => checkPrompt(tokens as Token[], 10, 4),
        (e: Error & { code?: string; param?: string; status?: number }) =>
          e.code === code && e.param === param && e.status === 400,
      );
    fails([-1], "invalid_token", "prompt");
    fails([10], "invalid_token", "prompt");
    fails([1, 2, 3, 4], "context_length_exceeded", "messages");
    checkPrompt([0, 9, 3] as Token[], 10, 4);
  });
});
