import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeVocabulary } from "../../../test/helpers/fakeVocabulary.js";
import type { ChatEvent, GenerateRequest, ToolDefinition } from "../../core/chat.js";
import { TokenLoop, type TokenLoopOptions, toolModeFor } from "./tokenLoop.js";

function completion(limits: GenerateRequest["limits"] = {}, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return { kind: "completion", model: "m", prompt: "", sampling: {}, limits, ...extra } as GenerateRequest;
}

const weather: ToolDefinition = {
  name: "weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

function chat(extra: Partial<Extract<GenerateRequest, { kind: "chat" }>>): GenerateRequest {
  return { kind: "chat", model: "m", messages: [{ role: "user", content: "hi" }], sampling: {}, limits: {}, ...extra };
}

/** Feeds tokens until the loop says the answer is over; returns the events and how many tokens it took. */
function run(
  vocabulary: FakeVocabulary,
  request: GenerateRequest,
  tokens: number[],
  options: Partial<TokenLoopOptions> = {},
  probabilities?: (token: number) => Map<number, number>,
) {
  const events: ChatEvent[] = [];
  const loop = new TokenLoop(
    vocabulary,
    request,
    { maxTokens: 100, templateStops: [], json: false, promptTail: [], ...options },
    (event) => events.push(event),
  );
  let consumed = 0;
  for (const token of tokens) {
    consumed++;
    if (!loop.push(token, probabilities?.(token))) break;
  }
  loop.finish();
  const text = events.map((event) => (event.type === "text-delta" ? event.text : "")).join("");
  return { events, text, consumed, loop };
}

describe("token loop: end of generation and length", () => {
  test("text passes through; an end-of-generation token ends with stop and is not counted", () => {
    const v = new FakeVocabulary();
    const { text, loop, consumed } = run(v, completion(), [...v.tokens("Once", " upon"), 0, ...v.tokens(" a")]);
    assert.equal(text, "Once upon");
    assert.equal(loop.reason, "stop");
    assert.equal(loop.completionTokens, 2);
    assert.equal(consumed, 3);
  });

  test("maxTokens ends with length on exactly that token", () => {
    const v = new FakeVocabulary();
    const { text, loop, consumed } = run(v, completion(), v.tokens("a", "b", "c", "d"), { maxTokens: 3 });
    assert.equal(text, "abc");
    assert.equal(loop.reason, "length");
    assert.equal(consumed, 3);
  });

  test("ignoreEos: generation goes on past end-of-generation tokens, which are counted but add no text", () => {
    const v = new FakeVocabulary();
    const { text, loop } = run(v, completion({ ignoreEos: true }), [v.id("x"), 0, v.id("y"), 0], { maxTokens: 4 });
    assert.equal(text, "xy");
    assert.equal(loop.completionTokens, 4);
    assert.equal(loop.reason, "length");
  });
});

describe("token loop: UTF-8 hold", () => {
  test("a character split over byte tokens arrives whole, in one delta, never as U+FFFD", () => {
    for (const word of ["é", "中", "😀", "a😀b"]) {
      const v = new FakeVocabulary();
      const { events, text } = run(v, completion(), v.byteTokens(word));
      assert.equal(text, word);
      for (const event of events) if (event.type === "text-delta") assert.doesNotMatch(event.text, /\uFFFD/);
    }
  });

  test("at the token limit nothing is held: the partial bytes go out as they are", () => {
    const v = new FakeVocabulary();
    const bytes = v.byteTokens("😀");
    const { text, loop } = run(v, completion(), bytes, { maxTokens: 2 });
    assert.equal(loop.reason, "length");
    assert.equal(text, "\uFFFD");
  });

  test("invalid bytes are held for at most 4 tokens, then released", () => {
    const v = new FakeVocabulary();
    const broken = Array.from({ length: 5 }, () => v.byteTokens("é")[0]!);
    const { text } = run(v, completion(), broken);
    assert.ok(text.length > 0 && text.includes("\uFFFD"));
  });
});

describe("token loop: stop sequences", () => {
  test("a stop split across tokens ends the answer before it; none of it is sent; it is reported", () => {
    const v = new FakeVocabulary();
    const tokens = v.tokens("Hello S", "TO", "P there");
    const { text, loop, consumed } = run(v, completion({ stop: ["STOP"] }), tokens);
    assert.equal(text, "Hello ");
    assert.equal(loop.reason, "stop");
    assert.equal(loop.stopSequence, "STOP");
    assert.equal(consumed, 3);
  });

  test("a template's stop ends the answer but is not reported as the caller's stop sequence", () => {
    const v = new FakeVocabulary();
    const { text, loop } = run(v, completion(), v.tokens("Hi", "<|im_", "end|>", "more"), {
      templateStops: ["<|im_end|>"],
    });
    assert.equal(text, "Hi");
    assert.equal(loop.reason, "stop");
    assert.equal(loop.stopSequence, undefined);
  });

  test("text held back for a stop that never comes is sent at the end", () => {
    const v = new FakeVocabulary();
    const { text, loop } = run(v, completion({ stop: ["STOP"] }), v.tokens("a S", "T"), { maxTokens: 2 });
    assert.equal(text, "a ST");
    assert.equal(loop.reason, "length");
  });

  test("cancelled: nothing held back is sent", () => {
    const v = new FakeVocabulary();
    const events: ChatEvent[] = [];
    const loop = new TokenLoop(
      v,
      completion({ stop: ["STOP"] }),
      { maxTokens: 10, templateStops: [], json: false, promptTail: [] },
      (e) => events.push(e),
    );
    loop.push(v.id("a ST"));
    loop.cancel();
    loop.finish();
    assert.deepEqual(events, [{ type: "text-delta", text: "a " }]);
    assert.equal(loop.reason, "cancelled");
  });
});

describe("token loop: tool calls and JSON end", () => {
  test("which mode a request starts in", () => {
    assert.equal(toolModeFor(completion()), "text");
    assert.equal(toolModeFor(chat({})), "text");
    assert.equal(toolModeFor(chat({ tools: [weather] })), "undecided");
    assert.equal(toolModeFor(chat({ tools: [weather], toolChoice: "none" })), "text");
    assert.equal(toolModeFor(chat({ tools: [weather], toolChoice: "required" })), "tool");
    assert.equal(toolModeFor(chat({ tools: [weather], toolChoice: { name: "weather" } })), "tool");
  });

  test("a forced call: buffered, ends at its closing brace, becomes a tool-call event", () => {
    const v = new FakeVocabulary();
    const request = chat({ tools: [weather], toolChoice: "required" });
    const tokens = v.tokens('{"name":"weather",', '"arguments":{"city":"Oslo"}', "}", "   ", "}");
    const { events, loop, consumed } = run(v, request, tokens);
    assert.equal(consumed, 3);
    assert.equal(loop.reason, "tool-calls");
    assert.equal(events.length, 1);
    const call = events[0];
    assert.ok(call?.type === "tool-call");
    assert.equal(call.call.name, "weather");
    assert.deepEqual(JSON.parse(call.call.arguments), { city: "Oslo" });
    assert.match(call.call.id, /^call_[0-9a-f]{24}$/);
  });

  test("auto: an answer that opens with text is text; one that opens with whitespace then { is a call", () => {
    const v = new FakeVocabulary();
    const asText = run(v, chat({ tools: [weather] }), v.tokens("  ", "Sunny", " {x}"));
    assert.equal(asText.text, "  Sunny {x}");
    const asCall = run(v, chat({ tools: [weather] }), v.tokens(" ", '{"name":"weather","arguments":{"city":"Rome"}}'));
    assert.equal(asCall.loop.reason, "tool-calls");
  });

  test("auto: JSON that is not a call of an offered tool goes out as text", () => {
    const v = new FakeVocabulary();
    const { events, loop } = run(v, chat({ tools: [weather] }), v.tokens('{"name":"nope","arguments":{}}'));
    assert.equal(loop.reason, "stop");
    assert.deepEqual(events, [{ type: "text-delta", text: '{"name":"nope","arguments":{}}' }]);
  });

  test("a JSON grammar's answer ends at its closing bracket (no trailing whitespace)", () => {
    const v = new FakeVocabulary();
    const { text, loop, consumed } = run(v, completion(), v.tokens('{"a":', "[1]}\n", "\n\n"), { json: true });
    assert.equal(text, '{"a":[1]}');
    assert.equal(loop.reason, "stop");
    assert.equal(consumed, 2);
  });
});

describe("token loop: logprobs", () => {
  test("each delta carries the entries of the tokens it completes; a stop sequence's tokens have none", () => {
    const v = new FakeVocabulary();
    const [a, b, stop] = v.tokens("Hi", " S", "TOP");
    const probabilities = (token: number) =>
      new Map([
        [token, 0.5],
        [v.id("alt"), 0.25],
      ]);
    const request = completion({ stop: ["STOP"] }, { logprobs: 1 });
    const { events } = run(v, request, [a!, b!, stop!], {}, probabilities);
    const deltas = events.filter((e) => e.type === "text-delta");
    assert.deepEqual(
      deltas.map((d) => [d.text, d.logprobs?.map((l) => l.token)]),
      // " S" straddles the stop: its text before the stop goes out, its entry does not (it is part of the stop).
      [
        ["Hi", ["Hi"]],
        [" ", []],
      ],
    );
    const first = deltas[0]?.logprobs?.[0];
    assert.equal(first?.logprob, Math.log(0.5));
    assert.deepEqual(
      first?.top.map((t) => t.token),
      ["Hi"],
    );
  });

  test("a tool call's tokens carry no logprobs", () => {
    const v = new FakeVocabulary();
    const request = chat({ tools: [weather], logprobs: 0 });
    const { events } = run(
      v,
      request,
      v.tokens('{"name":"weather","arguments":{"city":"Rome"}}'),
      {},
      (t) => new Map([[t, 1]]),
    );
    assert.ok(events.every((e) => e.type === "tool-call"));
  });
});
