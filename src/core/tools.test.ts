import assert from "node:assert/strict";
import { test } from "node:test";
import type { ToolDefinition } from "./chat.js";
import { forcesToolCall, messagesWithTools, parseToolCall, toolCallSchema } from "./tools.js";

const weather: ToolDefinition = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};
const time: ToolDefinition = { name: "get_time", parameters: { type: "object", properties: {} } };

test("tools are described in the system message; calls and results become text", () => {
  const messages = messagesWithTools(
    [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather in Oslo?" },
      {
        role: "assistant",
        content: "",
        toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' }],
      },
      { role: "tool", content: "rain", toolCallId: "call_1" },
    ],
    [weather],
    "auto",
  );
  assert.equal(messages[0]!.role, "system");
  assert.match(messages[0]!.content, /^Be brief\.\n\nYou can call these tools:\n\[\{"name":"get_weather"/);
  assert.equal(messages[2]!.content, '{"name": "get_weather", "arguments": {"city":"Oslo"}}');
  assert.deepEqual(messages[3], { role: "user", content: "Result of tool call (call_1): rain" });
  assert.equal(messagesWithTools([{ role: "user", content: "hi" }], [weather], "none")[0]!.role, "user");
});

test("the forced-call schema allows exactly the chosen tools", () => {
  assert.deepEqual(toolCallSchema([weather, time], { name: "get_time" }), {
    type: "object",
    properties: { name: { const: "get_time" }, arguments: { type: "object", properties: {} } },
    required: ["name", "arguments"],
    additionalProperties: false,
  });
  assert.equal((toolCallSchema([weather, time], "required").oneOf as unknown[]).length, 2);
  assert.equal(forcesToolCall([weather], "auto"), false);
  assert.equal(forcesToolCall([weather], "required"), true);
  assert.equal(forcesToolCall([], "required"), false);
});

test("a call is read only when it names a known tool with object arguments", () => {
  assert.deepEqual(parseToolCall(' {"name": "get_weather", "arguments": {"city": "Oslo"}} ', [weather]), {
    name: "get_weather",
    arguments: '{"city":"Oslo"}',
  });
  assert.equal(parseToolCall('{"name": "other", "arguments": {}}', [weather]), null);
  assert.equal(parseToolCall('{"name": "get_weather", "arguments": [1]}', [weather]), null);
  assert.equal(parseToolCall("It is raining.", [weather]), null);
});
