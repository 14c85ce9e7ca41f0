import { describe, test } from "node:test";
import { nativeToolsFixture } from "./helpers/nativeToolsSuite.js";

// Synthetic models (random weights) with Qwen2.5's, Llama 3.1's and Mistral Nemo's real templates: the JSON-object
// formats (test/native-tools-families.test.ts has Hermes and gpt-oss; test/helpers/nativeToolsSuite.ts the checks).
describe("native tool formats end to end: Qwen2.5, Llama 3.1, Mistral Nemo", () => {
  const fixture = nativeToolsFixture(["qwen", "llama", "mistral"], true);

  test("freehold synth --chat-template refuses a file it cannot read (usage error, exit 2)", () =>
    fixture.synthErrors());

  test("the runner's prompt is each family's own rendering of tools, calls and results, forced or not (exact token count)", () =>
    fixture.prompts());

  test("tool_choice naming a function forces one call by a grammar on the format's own call (Qwen, Llama 3.1, Mistral)", () =>
    fixture.forcedCalls());

  test("tool_choice auto on noise weights: an ordinary answer (text or a call), never an error", () => fixture.auto());
});
