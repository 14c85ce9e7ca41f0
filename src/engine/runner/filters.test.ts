import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeVocabulary } from "../../../test/helpers/fakeVocabulary.js";
import type { ChatEvent } from "../../core/chat.js";
import { LogprobTracker, logOf } from "./logprobs.js";
import { StopFilter } from "./stopFilter.js";
import { ToolGate } from "./toolGate.js";
import { Utf8Hold } from "./utf8Hold.js";

describe("Utf8Hold", () => {
  test("holds a split character until complete; whole tokens pass at once", () => {
    const v = new FakeVocabulary();
    const hold = new Utf8Hold(v);
    const generated: number[] = [];
    const out: (string | undefined)[] = [];
    for (const token of [...v.tokens("a"), ...v.byteTokens("中"), ...v.tokens("b")]) {
      generated.push(token);
      out.push(hold.push(token, generated, false));
    }
    assert.deepEqual(out, ["a", undefined, undefined, "中", "b"]);
  });

  test("`last` releases at once", () => {
    const v = new FakeVocabulary();
    const [first] = v.byteTokens("é");
    assert.equal(new Utf8Hold(v).push(first!, [first!], true), "\uFFFD");
  });
});

describe("ToolGate", () => {
  test("text mode passes text; with JSON tracking it cuts at the value's end", () => {
    const gate = new ToolGate("text", false, true);
    assert.deepEqual(gate.push('{"a": "}'), { text: '{"a": "}', ended: false });
    assert.deepEqual(gate.push('"}  '), { text: '"}', ended: true });
  });

  test("undecided: whitespace is held, then a [ decides by whether parallel calls are allowed", () => {
    for (const [parallel, mode] of [
      [true, "tool"],
      [false, "text"],
    ] as const) {
      const gate = new ToolGate("undecided", parallel, false);
      assert.deepEqual(gate.push(" \n"), { text: null, ended: false });
      gate.push("[");
      assert.equal(gate.mode, mode);
    }
  });

  test("tool mode buffers everything up to the end of the value", () => {
    const gate = new ToolGate("tool", false, false);
    assert.deepEqual(gate.push('{"x":'), { text: null, ended: false });
    assert.deepEqual(gate.push("1} trailing"), { text: null, ended: true });
    assert.equal(gate.buffered, '{"x":1}');
  });
});

describe("StopFilter", () => {
  test("emits what is safe; a stop is found across pushes and never sent", () => {
    const events: ChatEvent[] = [];
    const filter = new StopFilter(["</answer>"], undefined, (e) => events.push(e));
    assert.deepEqual(filter.push("ok </ans"), { stopped: false });
    assert.deepEqual(filter.push("wer> more"), { stopped: true, stop: "</answer>" });
    assert.deepEqual(events, [{ type: "text-delta", text: "ok " }]);
  });

  test("flush sends what was held back for a stop that did not come", () => {
    const events: ChatEvent[] = [];
    const filter = new StopFilter(["</answer>"], undefined, (e) => events.push(e));
    filter.push("ok </");
    filter.flush();
    assert.deepEqual(
      events.map((e) => (e.type === "text-delta" ? e.text : "")),
      ["ok ", "</"],
    );
  });
});

describe("LogprobTracker", () => {
  test("entries are released with the text that completes them, top alternatives as asked", () => {
    const v = new FakeVocabulary();
    const [a, b] = v.tokens("ab", "cd");
    const tracker = new LogprobTracker(v, 1);
    tracker.add(
      a!,
      new Map([
        [b!, 0.6],
        [a!, 0.4],
      ]),
      [],
    );
    tracker.place("ab");
    assert.deepEqual(tracker.release("a"), []);
    const [entry] = tracker.release("b");
    assert.equal(entry?.token, "ab");
    assert.equal(entry?.logprob, Math.log(0.4));
    assert.deepEqual(entry?.bytes, [97, 98]);
    assert.deepEqual(
      entry?.top.map((t) => t.token),
      ["cd"],
    );
  });

  test("log(0) is reported as -9999, as OpenAI does", () => {
    assert.equal(logOf(0), -9999);
    assert.equal(logOf(1), 0);
  });
});
