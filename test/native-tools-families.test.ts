import { describe, test } from "node:test";
import { nativeToolsFixture } from "./helpers/nativeToolsSuite.js";

// Hermes 2 Pro (a template node-llama-cpp's Jinja cannot run: the family's wrapper renders it) and gpt-oss (Harmony:
// the name sits outside the JSON, so a forced call takes the JSON path). The checks: test/helpers/nativeToolsSuite.ts.
describe("native tool formats end to end: Hermes 2 Pro, gpt-oss", () => {
  const fixture = nativeToolsFixture(["hermes", "harmony"], false);

  test("Hermes and gpt-oss prompts are the family's own rendering of tools, calls and results (exact token count)", () =>
    fixture.prompts());

  test("tool_choice naming a function forces one call: Hermes by grammar on its <tool_call>, gpt-oss by the JSON path", () =>
    fixture.forcedCalls());

  test("a template node-llama-cpp's Jinja cannot run (Hermes 2 Pro tool_use) still chats through the family's wrapper", () =>
    fixture.chats("hermes"));

  test("tool_choice auto on noise weights, Hermes and gpt-oss: an ordinary answer, never an error", () =>
    fixture.auto());
});
