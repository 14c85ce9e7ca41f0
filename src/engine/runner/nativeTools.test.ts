import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { JinjaTemplateChatWrapper } from "node-llama-cpp";
import type { ChatMessage, ToolDefinition } from "../../core/chat.js";
import { NativeToolCallParser } from "../../core/toolFormat.js";
import { nativeHistory, nativePrompt, resolveNativeTools } from "./nativeTools.js";

const nlc = await import("node-llama-cpp");
const templates = join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "templates");

function load(file: string) {
  const template = readFileSync(join(templates, file), "utf8");
  let jinja: JinjaTemplateChatWrapper | undefined;
  try {
    jinja = new nlc.JinjaTemplateChatWrapper({ template });
  } catch {
    jinja = undefined;
  }
  const native = resolveNativeTools(nlc, template, jinja);
  assert.ok(native, `${file}: a native tool format`);
  return native;
}

const weather: ToolDefinition = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const conversation: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Weather in Paris and Rome?" },
  {
    role: "assistant",
    content: "",
    toolCalls: [
      { id: "call_a", name: "get_weather", arguments: '{"city":"Paris"}' },
      { id: "call_b", name: "get_weather", arguments: '{"city":"Rome"}' },
    ],
  },
  // Results may come in any order: they are matched to their calls by id.
  { role: "tool", content: '{"sky":"clear"}', toolCallId: "call_b" },
  { role: "tool", content: "rain", toolCallId: "call_a" },
  { role: "assistant", content: "Rain in Paris, clear in Rome." },
  { role: "user", content: "And Oslo?" },
];

function render(file: string, forced = false): string {
  const native = load(file);
  return nativePrompt(native, conversation, [weather], true, forced).contextText.toString();
}

/** Each family's prompt: the tools, the earlier calls and their results in the family's own words. */
const families: { file: string; source: string; expect: (string | RegExp)[] }[] = [
  {
    file: "meta-llama-Llama-3.1-8B-Instruct.jinja",
    source: "template",
    expect: [
      "Environment: ipython",
      'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}',
      /"name": "get_weather",\s+"description": "Weather for a city"/,
      '{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n"rain"',
      '<|start_header_id|>ipython<|end_header_id|>\n\n{"sky": "clear"}',
    ],
  },
  {
    file: "meta-llama-Llama-3.2-3B-Instruct.jinja",
    source: "template",
    expect: ['Respond in the format {"name": function name, "parameters"', '{"name": "get_weather", "parameters"'],
  },
  {
    file: "Qwen-Qwen2.5-7B-Instruct.jinja",
    source: "template",
    expect: [
      '<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city"',
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>',
      '<tool_response>\n"rain"\n</tool_response>\n<tool_response>\n{"sky": "clear"}\n</tool_response>',
    ],
  },
  {
    file: "Qwen-Qwen3-0.6B.jinja",
    source: "template",
    expect: ['<tools>\n{"type": "function", "function": {"name": "get_weather"', '<tool_call>\n{"name": "get_weather"'],
  },
  {
    file: "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    source: "node-llama-cpp mistral",
    expect: [
      '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather"',
      '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Rome"}}]',
      "[TOOL_RESULTS]",
    ],
  },
  {
    file: "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja",
    source: "node-llama-cpp hermes",
    expect: ["<|im_start|>system", "<tools>", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'],
  },
  {
    file: "openai-gpt-oss-120b.jinja",
    source: "node-llama-cpp harmony",
    expect: [
      "namespace functions {",
      "// Weather for a city\ntype get_weather = (_: {",
      "to=functions.get_weather",
      '<|message|>{"city": "Paris"}<|call|>',
    ],
  },
];

for (const family of families) {
  test(`${family.file}: tools, calls and results are rendered in the family's format (${family.source})`, () => {
    const native = load(family.file);
    assert.ok(native.description.startsWith(family.source), native.description);
    const prompt = render(family.file);
    for (const expected of family.expect) {
      if (typeof expected === "string") assert.ok(prompt.includes(expected), `missing ${JSON.stringify(expected)}`);
      else assert.match(prompt, expected);
    }
    // The JSON path's own instruction never appears: the model's format replaced it.
    assert.ok(!prompt.includes("You can call these tools"));
  });
}

test("the call a family's model would write is read back as the call (render → parse round trip)", () => {
  const written: Record<string, string> = {
    "meta-llama-Llama-3.1-8B-Instruct.jinja": '{"name": "get_weather", "parameters": {"city": "Oslo"}}',
    "Qwen-Qwen2.5-7B-Instruct.jinja":
      'Checking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    "Qwen-Qwen3-0.6B.jinja": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    "mistralai-Mistral-Nemo-Instruct-2407.jinja":
      '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "abcdefghi"}]',
    "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja":
      '<tool_call>\n{"arguments": {"city": "Oslo"}, "name": "get_weather"}\n</tool_call>',
    "openai-gpt-oss-120b.jinja":
      '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Oslo"}',
  };
  for (const [file, text] of Object.entries(written)) {
    const parser = new NativeToolCallParser(load(file).format, [weather], false);
    parser.push(text);
    assert.deepEqual(parser.finish(), { calls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] }, file);
  }
});

test("a forced call: JSON-object formats end the prompt with the call's opener; others fall back (forced null)", () => {
  assert.ok(render("Qwen-Qwen2.5-7B-Instruct.jinja", true).endsWith("<|im_start|>assistant\n<tool_call>\n"));
  assert.ok(render("mistralai-Mistral-Nemo-Instruct-2407.jinja", true).endsWith("[/INST][TOOL_CALLS]["));
  assert.ok(render("meta-llama-Llama-3.1-8B-Instruct.jinja", true).endsWith("<|end_header_id|>\n\n"));
  assert.equal(load("Qwen-Qwen2.5-7B-Instruct.jinja").forced?.argumentsKey, "arguments");
  assert.equal(load("meta-llama-Llama-3.1-8B-Instruct.jinja").forced?.argumentsKey, "parameters");
  assert.equal(load("openai-gpt-oss-120b.jinja").forced, null);
});

test("templates without a tool format have none (the JSON path)", () => {
  const chatml =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const jinja = new nlc.JinjaTemplateChatWrapper({ template: chatml });
  assert.equal(resolveNativeTools(nlc, chatml, jinja), null);
  assert.equal(resolveNativeTools(nlc, undefined, undefined), null);
});

test("history: results attach to their calls by id; a result that answers no call is a user message", () => {
  const history = nativeHistory([
    { role: "user", content: "hi" },
    { role: "assistant", content: "", toolCalls: [{ id: "x", name: "get_weather", arguments: "{}" }] },
    { role: "tool", content: "sunny", toolCallId: "x" },
    { role: "tool", content: "stray", toolCallId: "nobody" },
  ]);
  assert.deepEqual(history[1], {
    type: "model",
    response: [{ type: "functionCall", name: "get_weather", params: {}, result: "sunny", startsNewChunk: true }],
  });
  assert.deepEqual(history[2], { type: "user", text: "Result of tool call (nobody): stray" });
  assert.deepEqual(history.at(-1), { type: "model", response: [] });
});

test("Functionary v3.2 (>>>NAME): its template renders tools and calls; the prompt ends with >>>, as the template's", () => {
  const file = "meetkai-functionary-medium-v3.2.jinja";
  const native = load(file);
  assert.ok(native.description.startsWith("template (functionary)"), native.description);
  const prompt = render(file);
  for (const expected of [
    "namespace functions {",
    "// Weather for a city\ntype get_weather = (_: {",
    '>>>get_weather\n{"city": "Paris"}>>>get_weather\n{"city": "Rome"}',
    "<|start_header_id|>tool<|end_header_id|>\n\n",
  ])
    assert.ok(prompt.includes(expected), `missing ${JSON.stringify(expected)}`);
  // The earlier answer's text is addressed to the user.
  assert.match(prompt, />>>all\n+Rain in Paris, clear in Rome\./);
  // node-llama-cpp renders an assistant turn's start as ">>>all\n" (text only); the model must be free to call.
  assert.ok(prompt.endsWith("<|start_header_id|>assistant<|end_header_id|>\n\n>>>"), JSON.stringify(prompt.slice(-60)));
  // A forced call cannot be constrained in this format (the name is outside the JSON): the JSON path.
  assert.equal(native.forced, null);
  for (const [written, expected] of [
    ['get_weather\n{"city": "Oslo"}', { calls: [{ name: "get_weather", arguments: '{"city":"Oslo"}' }] }],
    ["all\nIt rains.", null],
  ] as const) {
    const parser = new NativeToolCallParser(native.format, [weather], false);
    const released = parser.push(written);
    const end = parser.finish();
    if (expected) assert.deepEqual(end, expected);
    else assert.equal(released + (end.calls ? "" : end.text), "It rains.");
  }
});

test("Llama 3.1: its template knows <|python_tag|>, so built-in calls are read too; Llama 3.2's (no tag) is unchanged", () => {
  const llama31 = load("meta-llama-Llama-3.1-8B-Instruct.jinja");
  assert.equal(llama31.format.builtinOpener, "<|python_tag|>");
  assert.match(llama31.description, /<\|python_tag\|>NAME\.call/);
  const search: ToolDefinition = {
    name: "brave_search",
    parameters: { type: "object", properties: { query: { type: "string" } } },
  };
  const parser = new NativeToolCallParser(llama31.format, [weather, search], true);
  parser.push('<|python_tag|>brave_search.call(query="Oslo weather")');
  assert.deepEqual(parser.finish(), { calls: [{ name: "brave_search", arguments: '{"query":"Oslo weather"}' }] });
  const llama32 = load("meta-llama-Llama-3.2-3B-Instruct.jinja");
  assert.equal(llama32.format.builtinOpener, undefined);
});
