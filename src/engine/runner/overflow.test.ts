import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Token } from "node-llama-cpp";
import type { ChatMessage, GenerateRequest } from "../../core/chat.js";
import { answerRoom, fitPrompt } from "./overflow.js";
import type { Prompt } from "./prompt.js";

/** Renders each message as 10 tokens (its index), after a BOS (1). */
function render(request: GenerateRequest): Prompt {
  if (request.kind !== "chat") return { tokens: [1, ...(request.prompt as number[])] as Token[], stops: [] };
  return { tokens: [1, ...request.messages.flatMap((_, i) => Array(10).fill(i + 2))] as Token[], stops: [] };
}

const messages: ChatMessage[] = [
  { role: "system", content: "s" },
  ...Array.from({ length: 6 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `${i}` }) as ChatMessage),
];
const chat = (overflow?: GenerateRequest["overflow"]): GenerateRequest => ({
  kind: "chat",
  model: "m",
  messages,
  sampling: {},
  limits: { maxTokens: 10 },
  ...(overflow ? { overflow } : {}),
});

describe("overflow policy", () => {
  test("a prompt that fits is untouched, whatever the policy", () => {
    const fitted = fitPrompt(chat("shift"), 100, render, 1);
    assert.equal(fitted.truncation, undefined);
    assert.equal(fitted.prompt.tokens.length, 71);
  });

  test("error (the default): a 400 context_length_exceeded", () => {
    for (const policy of [undefined, "error"] as const)
      assert.throws(() => fitPrompt(chat(policy), 60, render, 1), { code: "context_length_exceeded", status: 400 });
  });

  test("truncate-middle drops the oldest turns, never the system message or the last turn, and leaves answer room", () => {
    const fitted = fitPrompt(chat("truncate-middle"), 60, render, 1);
    assert.ok(fitted.request.kind === "chat");
    const kept = fitted.request.messages.map((m) => m.content);
    assert.deepEqual(kept, ["s", "3", "4", "5"], "1 BOS + 5 messages is 51 tokens: one over the 50 that leave room");
    assert.deepEqual(fitted.truncation, {
      policy: "truncate-middle",
      promptTokens: 71,
      contextSize: 60,
      keptTokens: 41,
      droppedTokens: 30,
      droppedMessages: 3,
    });
    assert.ok(fitted.prompt.tokens.length <= 60 - answerRoom(60, 10));
  });

  test("shift keeps BOS and the prompt's end", () => {
    const fitted = fitPrompt(chat("shift"), 60, render, 1);
    assert.equal(fitted.prompt.tokens[0], 1);
    assert.equal(fitted.prompt.tokens.length, 50);
    assert.deepEqual(fitted.prompt.tokens.slice(-3), [8, 8, 8], "the last message's tokens stay");
    assert.equal(fitted.truncation?.droppedTokens, 21);
  });

  test("completions: truncate-middle shifts (no turns to drop)", () => {
    const request: GenerateRequest = {
      kind: "completion",
      model: "m",
      prompt: Array.from({ length: 100 }, (_, i) => i + 10),
      sampling: {},
      limits: { maxTokens: 4 },
      overflow: "truncate-middle",
    };
    const fitted = fitPrompt(request, 64, render, 1);
    assert.equal(fitted.prompt.tokens.length, 60);
    assert.equal(fitted.prompt.tokens.at(-1), 109);
  });

  test("answer room: max_tokens, at most half the context, 256 when unset", () => {
    assert.equal(answerRoom(1000, 10), 10);
    assert.equal(answerRoom(1000, 900), 500);
    assert.equal(answerRoom(1000, undefined), 256);
  });
});
