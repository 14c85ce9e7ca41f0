import assert from "node:assert/strict";
import { test } from "node:test";
import type { ToolDefinition } from "./chat.js";
import { NativeToolCallParser, type NativeToolFormat, type ParsedToolCall } from "./toolFormat.js";

// The formats the engine derives from real templates (src/engine/runner/nativeTools.test.ts checks the derivation).
const qwen: NativeToolFormat = {
  name: "<tool_call>",
  openers: ["<tool_call>"],
  call: { kind: "json-object", argumentsKeys: ["arguments", "parameters"] },
  array: false,
  closers: ["</tool_call>", "<|im_end|>\n<|im_start|>user", "<tool_response>"],
};
const llama3: NativeToolFormat = {
  name: "JSON",
  openers: [""],
  call: { kind: "json-object", argumentsKeys: ["parameters", "arguments"] },
  array: false,
  closers: ["<|eot_id|><|start_header_id|>ipython<|end_header_id|>"],
};
const mistral: NativeToolFormat = {
  name: "[TOOL_CALLS]",
  openers: ["[TOOL_CALLS]"],
  call: { kind: "json-object", argumentsKeys: ["arguments", "parameters"] },
  array: true,
  closers: [",", "]"],
};
const harmony: NativeToolFormat = {
  name: "to=functions.",
  openers: ["<|channel|>commentary to=functions.", "<|channel|>analysis to=functions.", "to=functions."],
  call: { kind: "name-then-json" },
  array: false,
  closers: ["<|call|>"],
};
const llama31Function: NativeToolFormat = {
  name: "<function=",
  openers: ["<function="],
  call: { kind: "name-then-json" },
  array: false,
  closers: ["</function><|eom_id|>"],
};

const weather: ToolDefinition = {
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } } },
};
const time: ToolDefinition = { name: "get_time", parameters: { type: "object", properties: {} } };
const tools = [weather, time];

/** Streams `text` through a parser in pieces of `size` characters: what was released as text, and the outcome. */
function run(format: NativeToolFormat, text: string, size: number, parallel = true, startInCall = false) {
  const parser = new NativeToolCallParser(format, tools, parallel, startInCall);
  let released = "";
  for (let at = 0; at < text.length; at += size) released += parser.push(text.slice(at, at + size));
  const end = parser.finish();
  return end.calls ? { released, calls: end.calls } : { released: released + end.text, calls: null };
}

/** The same outcome whatever the token boundaries: every piece size from 1 character to the whole text. */
function parseAll(format: NativeToolFormat, text: string, parallel = true, startInCall = false) {
  const first = run(format, text, text.length, parallel, startInCall);
  for (let size = 1; size < text.length; size++) {
    assert.deepEqual(run(format, text, size, parallel, startInCall), first, `pieces of ${size} characters`);
  }
  return first;
}

const paris: ParsedToolCall = { name: "get_weather", arguments: '{"city":"Paris"}' };
const rome: ParsedToolCall = { name: "get_weather", arguments: '{"city":"Rome"}' };

test("Qwen/Hermes: text before the calls is released; parallel <tool_call> blocks become calls", () => {
  const text =
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name":"get_weather","arguments":{"city":"Rome"}}\n</tool_call>';
  assert.deepEqual(parseAll(qwen, text), { released: "Let me check.\n", calls: [paris, rome] });
  // Without parallel calls, two calls are not an answer the client asked for: the whole text comes back.
  assert.deepEqual(parseAll(qwen, text, false), { released: text, calls: null });
  // One call, nothing before it, the closing tag cut short by the end-of-turn token.
  assert.deepEqual(parseAll(qwen, '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool'), {
    released: "",
    calls: [{ name: "get_time", arguments: "{}" }],
  });
});

test("anything that is not entirely calls to offered tools is text, whole", () => {
  for (const text of [
    'Sure.\n<tool_call>\n{"name": "delete_everything", "arguments": {}}\n</tool_call>', // a tool not offered
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par', // cut off (max_tokens)
    '<tool_call>\n{"name": "get_weather", "arguments": ["Paris"]}\n</tool_call>', // arguments not an object
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call> and then I said', // text after
    '<tool_call>\n{"name": get_weather}\n</tool_call>', // not JSON
    "<tool_call>", // an opener and nothing
    "I would use <tool_ but no", // an opener's start that never completes
    "plain words with no call at all",
    "",
  ]) {
    assert.deepEqual(parseAll(qwen, text), { released: text, calls: null }, text);
  }
});

test("Llama 3.x: a bare JSON answer is a call; arguments written as a JSON string are accepted", () => {
  assert.deepEqual(parseAll(llama3, '{"name": "get_weather", "parameters": {"city": "Paris"}}'), {
    released: "",
    calls: [paris],
  });
  assert.deepEqual(parseAll(llama3, '  {"name":"get_weather","arguments":"{\\"city\\": \\"Paris\\"}"}'), {
    released: "",
    calls: [paris],
  });
  // A bare format only takes a call that starts the answer: JSON after text is text.
  const text = 'Here: {"name": "get_weather", "parameters": {"city": "Paris"}}';
  assert.deepEqual(parseAll(llama3, text), { released: text, calls: null });
});

test("Mistral: [TOOL_CALLS] holds a JSON array of calls (extra keys such as id are ignored)", () => {
  const text =
    '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1b2c3d4e"}, {"name": "get_weather", "arguments": {"city": "Rome"}, "id": "f5g6h7i8j"}]';
  assert.deepEqual(parseAll(mistral, text), { released: "", calls: [paris, rome] });
  assert.deepEqual(parseAll(mistral, "[TOOL_CALLS][]"), { released: "[TOOL_CALLS][]", calls: null });
});

test("name-then-JSON formats: Harmony (gpt-oss) and Llama 3.1's <function=…>", () => {
  const harmonyText =
    '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>';
  assert.deepEqual(parseAll(harmony, harmonyText), { released: "", calls: [paris] });
  // The other order gpt-oss writes (recipient in the header): the bare opener.
  const headerFirst = ' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}';
  assert.deepEqual(parseAll(harmony, headerFirst), { released: " ", calls: [paris] });
  assert.deepEqual(parseAll(llama31Function, '<function=get_weather>{"city": "Paris"}</function>'), {
    released: "",
    calls: [paris],
  });
  // The arguments must follow the name closely: a stray brace far away is not a call.
  const far = `<function=get_weather>${" ".repeat(60)}{"city": "Paris"}`;
  assert.deepEqual(parseAll(llama31Function, far), { released: far, calls: null });
});

test("a forced call starts inside the call (the prompt ends with the opener)", () => {
  assert.deepEqual(parseAll(qwen, '{"name": "get_weather", "arguments": {"city": "Paris"}}', false, true), {
    released: "",
    calls: [paris],
  });
});

test("special tokens are matched as written but never shown: released text carries only what the client may see", () => {
  // gpt-oss's tokens: `<|channel|>`, `<|constrain|>`, `<|message|>` are special (shown as nothing).
  const tokens: [string, string][] = [
    ["<|channel|>", ""],
    ["comment", "comment"],
    ["ary", "ary"],
    [" to", " to"],
    ["=functions", "=functions"],
    [".get", ".get"],
    ["_weather", "_weather"],
    [" ", " "],
    ["<|constrain|>", ""],
    ["json", "json"],
    ["<|message|>", ""],
    ['{"city":', '{"city":'],
  ];
  const parser = new NativeToolCallParser(harmony, tools, false);
  let released = "";
  for (const [raw, visible] of tokens) released += parser.push(raw, visible);
  released += parser.push(' "Paris"}');
  assert.equal(released, "");
  assert.deepEqual(parser.finish(), { calls: [paris] });
  // Not a call after all: the text comes back without the special tokens.
  const text = new NativeToolCallParser(harmony, tools, false);
  let shown = text.push("<|channel|>", "") + text.push("final", "final") + text.push("<|message|>", "");
  shown += text.push("Hi to=functions.nothing", "Hi to=functions.nothing");
  // "<|channel|>" could have opened "<|channel|>commentary to=functions.": held until "final" said otherwise.
  const end = text.finish();
  assert.equal(end.calls, null);
  assert.equal(shown + (end.calls === null ? end.text : ""), "finalHi to=functions.nothing");
});

// Functionary v3.2: the prompt ends with ">>>"; the model writes segments "RECIPIENT\n…", "all" being the user.
const functionary: NativeToolFormat = {
  name: "functionary",
  openers: [">>>"],
  call: { kind: "name-then-json" },
  array: false,
  closers: [],
  textMarkers: [">>>all\n"],
  answerPrefix: ">>>",
};

test("Functionary >>>NAME: calls, text addressed to all (its marker dropped), text then a call, at any boundary", () => {
  assert.deepEqual(parseAll(functionary, 'get_weather\n{"city": "Paris"}'), { released: "", calls: [paris] });
  assert.deepEqual(parseAll(functionary, 'get_weather\n{"city": "Paris"}>>>get_weather\n{"city": "Rome"}'), {
    released: "",
    calls: [paris, rome],
  });
  // Plain text: "all\n" addresses the user and is not part of the answer; a later ">>>" that is no call stays text.
  assert.deepEqual(parseAll(functionary, "all\nIt is sunny >>> in Paris."), {
    released: "It is sunny >>> in Paris.",
    calls: null,
  });
  assert.deepEqual(parseAll(functionary, 'all\nLet me check.>>>get_weather\n{"city": "Paris"}'), {
    released: "Let me check.",
    calls: [paris],
  });
  // A recipient that is no offered tool, or arguments that are not an object: text, without the markers.
  assert.deepEqual(parseAll(functionary, 'get_stock\n{"ticker": "X"}').calls, null);
  assert.deepEqual(parseAll(functionary, "get_weather\nParis").calls, null);
  // A name that starts like "all" is a call, not text ("all" is only the user when its line ends there).
  const allTool: ToolDefinition = { name: "allocate", parameters: { type: "object", properties: {} } };
  const parser = new NativeToolCallParser(functionary, [allTool], false);
  assert.equal(parser.push("allocate\n{}"), "");
  assert.deepEqual(parser.finish(), { calls: [{ name: "allocate", arguments: "{}" }] });
});

// Llama 3.1 with its <|python_tag|>: JSON calls as before, built-in calls, raw code for a code tool.
const llama31: NativeToolFormat = {
  ...llama3,
  openers: ["", "<|python_tag|>"],
  builtinOpener: "<|python_tag|>",
};
const search: ToolDefinition = {
  name: "brave_search",
  parameters: { type: "object", properties: { query: { type: "string" } } },
};
const python: ToolDefinition = { name: "python", parameters: { type: "object", properties: { code: {} } } };

function runWith(format: NativeToolFormat, offered: ToolDefinition[], text: string) {
  let first: unknown;
  for (let size = 1; size <= text.length; size++) {
    const parser = new NativeToolCallParser(format, offered, true);
    let released = "";
    for (let at = 0; at < text.length; at += size) released += parser.push(text.slice(at, at + size));
    const end = parser.finish();
    const outcome = end.calls ? { released, calls: end.calls } : { released: released + end.text, calls: null };
    if (first === undefined) first = outcome;
    else assert.deepEqual(outcome, first, `pieces of ${size}`);
  }
  return first as { released: string; calls: ParsedToolCall[] | null };
}

test("Llama 3.1 <|python_tag|>: a JSON call, NAME.call(arg=value, …), raw code for python; anything else is text", () => {
  const offered = [weather, search, python];
  assert.deepEqual(
    runWith(llama31, offered, '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}'),
    {
      released: "",
      calls: [paris],
    },
  );
  assert.deepEqual(runWith(llama31, offered, '<|python_tag|>brave_search.call(query="weather in Paris")'), {
    released: "",
    calls: [{ name: "brave_search", arguments: '{"query":"weather in Paris"}' }],
  });
  // Several arguments of any JSON kind, spaces anywhere, a string with an escaped quote and a parenthesis.
  assert.deepEqual(
    runWith(llama31, offered, '<|python_tag|> brave_search . call( query = "say \\"hi\\" (now)", count=3, safe=true )')
      .calls,
    [{ name: "brave_search", arguments: '{"query":"say \\"hi\\" (now)","count":3,"safe":true}' }],
  );
  assert.deepEqual(runWith(llama31, offered, "<|python_tag|>import sys\nprint(sys.version)").calls, [
    { name: "python", arguments: JSON.stringify({ code: "import sys\nprint(sys.version)" }) },
  ]);
  // Text before the tag goes out as text.
  assert.deepEqual(runWith(llama31, offered, 'Searching.<|python_tag|>brave_search.call(query="x")'), {
    released: "Searching.",
    calls: [{ name: "brave_search", arguments: '{"query":"x"}' }],
  });
  // Not offered, malformed, or trailing garbage: the whole answer is text (no call is invented).
  for (const text of [
    '<|python_tag|>wolfram_alpha.call(query="2+2")',
    "<|python_tag|>brave_search.call(query=unquoted)",
    '<|python_tag|>brave_search.call(query="x"',
    '<|python_tag|>brave_search.call(query="x") and more',
  ])
    assert.equal(runWith(llama31, [weather, search], text).calls, null, text);
  // Raw code with no code tool offered is text too.
  assert.equal(runWith(llama31, [weather], "<|python_tag|>print(1)").calls, null);
});
