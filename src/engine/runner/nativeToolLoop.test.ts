import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeVocabulary } from "../../../test/helpers/fakeVocabulary.js";
import type { ChatEvent, GenerateRequest, ToolDefinition } from "../../core/chat.js";
import { NativeToolCallParser, type NativeToolFormat } from "../../core/toolFormat.js";
import { TokenLoop } from "./tokenLoop.js";

// Stand-in token streams in each family's format, through the runner's token loop: what the client gets.
const weather: ToolDefinition = {
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } } },
};
const qwen: NativeToolFormat = {
  name: "<tool_call>",
  openers: ["<tool_call>"],
  call: { kind: "json-object", argumentsKeys: ["arguments", "parameters"] },
  array: false,
  closers: ["</tool_call>"],
};
const mistral: NativeToolFormat = {
  name: "[TOOL_CALLS]",
  openers: ["[TOOL_CALLS]"],
  call: { kind: "json-object", argumentsKeys: ["arguments"] },
  array: true,
  closers: [",", "]"],
};
const harmony: NativeToolFormat = {
  name: "to=functions.",
  openers: ["<|channel|>commentary to=functions.", "to=functions."],
  call: { kind: "name-then-json" },
  array: false,
  closers: ["<|call|>"],
};

function chat(extra: Partial<Extract<GenerateRequest, { kind: "chat" }>> = {}): GenerateRequest {
  return {
    kind: "chat",
    model: "m",
    messages: [{ role: "user", content: "Weather?" }],
    tools: [weather],
    parallelToolCalls: true,
    sampling: {},
    limits: {},
    ...extra,
  };
}

function run(
  v: FakeVocabulary,
  format: NativeToolFormat,
  tokens: number[],
  request = chat(),
  forced = false,
  maxTokens = 100,
) {
  const events: ChatEvent[] = [];
  const parallel = request.kind === "chat" && !forced && (request.parallelToolCalls ?? false);
  const parser = new NativeToolCallParser(format, [weather], parallel, forced);
  const loop = new TokenLoop(
    v,
    request,
    { maxTokens, templateStops: [], json: forced, promptTail: [], native: { parser, forced } },
    (event) => events.push(event),
  );
  let consumed = 0;
  for (const token of tokens) {
    consumed++;
    if (!loop.push(token)) break;
  }
  loop.finish();
  const text = events.map((event) => (event.type === "text-delta" ? event.text : "")).join("");
  const calls = events.flatMap((event) => (event.type === "tool-call" ? [event.call] : []));
  return { text, calls, reason: loop.reason, consumed, events };
}

describe("token loop with a native tool format", () => {
  test("Qwen: text before the call streams first; two <tool_call> blocks become two calls", () => {
    const v = new FakeVocabulary();
    const tokens = v.tokens(
      "Let",
      " me check.",
      "\n<",
      "tool_call>\n{",
      '"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n',
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lima"}}',
      "\n</tool_call>",
    );
    const { text, calls, reason, events } = run(v, qwen, [...tokens, 0]);
    assert.equal(text, "Let me check.\n");
    assert.deepEqual(
      calls.map((call) => [call.name, call.arguments]),
      [
        ["get_weather", '{"city":"Oslo"}'],
        ["get_weather", '{"city":"Lima"}'],
      ],
    );
    for (const call of calls) assert.match(call.id, /^call_[0-9a-f]{24}$/);
    assert.equal(reason, "tool-calls");
    // The text was sent before the calls, as it came.
    assert.equal(events.findIndex((event) => event.type === "tool-call") > 0, true);
  });

  test("Mistral: [TOOL_CALLS] is a special token: matched, never shown", () => {
    const v = new FakeVocabulary();
    const tokens = [
      v.special("[TOOL_CALLS]"),
      ...v.tokens('[{"name": "get_weather", ', '"arguments": {"city": "Oslo"}}]'),
    ];
    const { text, calls, reason } = run(v, mistral, [...tokens, 0]);
    assert.equal(text, "");
    assert.deepEqual(
      calls.map((call) => call.name),
      ["get_weather"],
    );
    assert.equal(reason, "tool-calls");
  });

  test("gpt-oss (Harmony): the channel header opens the call; nothing of it reaches the answer", () => {
    const v = new FakeVocabulary();
    const tokens = [
      v.special("<|channel|>"),
      ...v.tokens("comment", "ary", " to", "=functions", ".get_weather", " "),
      v.special("<|constrain|>"),
      v.id("json"),
      v.special("<|message|>"),
      ...v.tokens('{"city":', ' "Oslo"}'),
    ];
    const { text, calls } = run(v, harmony, [...tokens, 0]);
    assert.equal(text, "");
    assert.deepEqual(
      calls.map((call) => [call.name, call.arguments]),
      [["get_weather", '{"city":"Oslo"}']],
    );
  });

  test("not a call after all: the held text is the answer (without special tokens), stops still apply", () => {
    const v = new FakeVocabulary();
    const tokens = v.tokens("I use <", "tool_call> ", "tags. STOP here");
    const plain = run(v, qwen, [...tokens, 0]);
    assert.equal(plain.text, "I use <tool_call> tags. STOP here");
    assert.equal(plain.calls.length, 0);
    assert.equal(plain.reason, "stop");
    const stopped = run(v, qwen, [...tokens, 0], chat({ limits: { stop: ["STOP"] } }));
    assert.equal(stopped.text, "I use <tool_call> tags. ");
    assert.equal(stopped.reason, "stop");
    // A stop sequence before any call ends the answer there; nothing after it is read.
    const early = run(
      v,
      qwen,
      [...v.tokens("Done. STOP", '<tool_call>{"name": "get_weather"}'), 0],
      chat({ limits: { stop: ["STOP"] } }),
    );
    assert.equal(early.text, "Done. ");
    assert.equal(early.calls.length, 0);
  });

  test("a call cut off by max_tokens is text, with finish reason length", () => {
    const v = new FakeVocabulary();
    const tokens = v.tokens("<tool_call>", '{"name": "get_weather", ', '"arguments": {"ci');
    const { text, calls, reason, consumed } = run(v, qwen, tokens, chat(), false, 3);
    assert.equal(consumed, 3);
    assert.equal(calls.length, 0);
    assert.equal(reason, "length");
    assert.equal(text, '<tool_call>{"name": "get_weather", "arguments": {"ci');
  });

  test("forced: the answer starts inside the call; the object's end ends it (grammar whitespace is not waited for)", () => {
    const v = new FakeVocabulary();
    const tokens = v.tokens('{"name": "get_weather", "arguments": {"city": "Oslo"}}', "\n", "\n", "\n");
    const { calls, reason, consumed } = run(v, qwen, tokens, chat({ toolChoice: "required" }), true);
    assert.equal(consumed, 1);
    assert.equal(reason, "tool-calls");
    assert.deepEqual(
      calls.map((call) => call.arguments),
      ['{"city":"Oslo"}'],
    );
  });

  test("parallel_tool_calls false: two calls are not an answer the client allowed; they come back as text", () => {
    const v = new FakeVocabulary();
    const call = '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>';
    const { text, calls } = run(v, qwen, [...v.tokens(call, call), 0], chat({ parallelToolCalls: false }));
    assert.equal(calls.length, 0);
    assert.equal(text, call + call);
  });
});
