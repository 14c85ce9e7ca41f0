import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { nativeToolsFixture } from "./helpers/nativeToolsSuite.js";

// Functionary v3.2 (MeetKai): the answer is `>>>RECIPIENT\n…` segments, text addressed to `all`; the prompt ends with
// `>>>`. The checks: test/helpers/nativeToolsSuite.ts; the parser's cases: src/core/toolFormat.test.ts.
describe("native tool formats end to end: Functionary v3.2", () => {
  const fixture = nativeToolsFixture(["functionary"], false);

  test("Functionary's prompt is its own rendering of tools, calls and results, ending with >>> (exact token count)", () =>
    fixture.prompts());

  test("tool_choice naming a function forces one call through the JSON path (the name is outside the JSON)", () =>
    fixture.forcedCalls());

  test("tool_choice auto on noise weights, Functionary: an ordinary answer, never an error", () => fixture.auto());

  test("a plain chat with the Functionary model answers", () => fixture.chats("functionary"));

  test("/api/show and freehold show name the tool format: Functionary's, read from its template", async () => {
    assert.match(await fixture.toolFormat("functionary"), /^template \(functionary\): >>>NAME/);
  });
});
