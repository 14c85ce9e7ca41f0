import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FakeVocabulary } from "../../../test/helpers/fakeVocabulary.js";
import type { ChatEvent, GenerateRequest, ToolDefinition } from "../../core/chat.js";
import { ReasoningSplitter, reasoningMarkers, THINK_MARKERS } from "./reasoning.js";
import { TokenLoop } from "./tokenLoop.js";

/** Feeds pieces one by one; returns all reasoning and answer text. */
function split(pieces: string[], markers = THINK_MARKERS) {
  const splitter = new ReasoningSplitter(markers);
  let reasoning = "";
  let answer = "";
  for (const piece of pieces) {
    const out = splitter.push(piece);
    reasoning += out.reasoning;
    answer += out.answer;
  }
  const rest = splitter.flush();
  return { reasoning: reasoning + rest.reasoning, answer: answer + rest.answer };
}

describe("ReasoningSplitter", () => {
  test("a <think> block is reasoning, the rest the answer, however the markers are cut", () => {
    const text = "<think>\nLet me see.</think>\n\nHello!";
    // Every way of cutting the text in two, and one character at a time.
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(split([text.slice(0, cut), text.slice(cut)]), { reasoning: "Let me see.", answer: "Hello!" });
    }
    assert.deepEqual(split([...text]), { reasoning: "Let me see.", answer: "Hello!" });
  });

  test("an answer without a thought block passes whole, even one that starts like a marker", () => {
    assert.deepEqual(split(["Hi ", "there"]), { reasoning: "", answer: "Hi there" });
    assert.deepEqual(split(["<thi", "s> is html"]), { reasoning: "", answer: "<this> is html" });
    assert.deepEqual(split(["  ", "<b>x</b>"]), { reasoning: "", answer: "  <b>x</b>" });
    assert.deepEqual(split(["<th"]), { reasoning: "", answer: "<th" });
  });

  test("a <think> later in the answer is text, not reasoning", () => {
    assert.deepEqual(split(["Sure. <think>no</think>"]), { reasoning: "", answer: "Sure. <think>no</think>" });
  });

  test("a prompt that opens the block (DeepSeek-R1's template): generation starts inside it", () => {
    const markers = { ...THINK_MARKERS, openedByPrompt: true };
    assert.deepEqual(split(["\nhmm", "</think>", "ok"], markers), { reasoning: "hmm", answer: "ok" });
  });

  test("a template's own markers, from node-llama-cpp's chat wrapper settings", async () => {
    const nlc = await import("node-llama-cpp");
    const qwen = reasoningMarkers(new nlc.QwenChatWrapper(), "<|im_start|>assistant\n");
    assert.deepEqual(qwen, { open: "<think>", close: "</think>", openedByPrompt: false });
    assert.equal(reasoningMarkers(new nlc.ChatMLChatWrapper(), "x").open, "<think>");
    assert.equal(reasoningMarkers(undefined, "…<｜Assistant｜><think>\n").openedByPrompt, true);
    const custom = { settings: { segments: { thought: { prefix: "[THINK]", suffix: "[/THINK]" } } } };
    const markers = reasoningMarkers(custom as never, "");
    assert.deepEqual(split(["[THINK]a[/TH", "INK]b"], markers), { reasoning: "a", answer: "b" });
  });

  test("leading whitespace goes out at once, however much there is; a thought block after it is still reasoning", () => {
    // Holding it until the first other character made an answer of only whitespace (the 1B bench shape's "\n"s)
    // arrive at its end: time to first token = the whole generation (issue 14).
    const spaces = [" ", "\n", "\n\n", "\t", " \n "];
    for (let count = 1; count <= 12; count++) {
      const pieces = Array.from({ length: count }, (_, i) => spaces[(i * 7 + count) % spaces.length]!);
      const splitter = new ReasoningSplitter(THINK_MARKERS);
      for (const piece of pieces) assert.deepEqual(splitter.push(piece), { reasoning: "", answer: piece });
      assert.deepEqual(split([...pieces, "<think>", "plan", "</think>", "\n", "Hi"]), {
        reasoning: "plan",
        answer: `${pieces.join("")}Hi`,
      });
      assert.deepEqual(split([...pieces, "<th", "ink>a</think>b"]), { reasoning: "a", answer: `${pieces.join("")}b` });
      assert.deepEqual(split([...pieces, "<b>"]), { reasoning: "", answer: `${pieces.join("")}<b>` });
    }
    // Whitespace in the same piece as the opening marker is the marker's layout, as before.
    assert.deepEqual(split([" \n<think>x</think>y"]), { reasoning: "x", answer: "y" });
  });

  test("unfinished reasoning at the end is reasoning (the model ran out of tokens thinking)", () => {
    assert.deepEqual(split(["<think>still going</th"]), { reasoning: "still going</th", answer: "" });
  });
});

const weather: ToolDefinition = { name: "weather", parameters: { type: "object", properties: {} } };

function chat(extra: Partial<Extract<GenerateRequest, { kind: "chat" }>> = {}): GenerateRequest {
  return { kind: "chat", model: "m", messages: [{ role: "user", content: "q" }], sampling: {}, limits: {}, ...extra };
}

function loop(request: GenerateRequest, maxTokens = 100, json = false) {
  const v = new FakeVocabulary();
  const events: ChatEvent[] = [];
  const l = new TokenLoop(
    v,
    request,
    { maxTokens, templateStops: [], json, promptTail: [], reasoning: THINK_MARKERS },
    (e) => events.push(e),
  );
  const feed = (...pieces: string[]) => {
    for (const piece of pieces) if (!l.push(v.id(piece))) return false;
    return true;
  };
  const text = (type: "reasoning" | "text-delta") => events.map((e) => (e.type === type ? e.text : "")).join("");
  return { l, v, events, feed, text };
}

describe("token loop: reasoning", () => {
  test("reasoning events come first; the answer's text is only the answer", () => {
    const t = loop(chat());
    t.feed("<think>", "plan", "</think>", "\n\n", "Answer");
    t.l.finish();
    assert.equal(t.text("reasoning"), "plan");
    assert.equal(t.text("text-delta"), "Answer");
    assert.equal(t.events[0]?.type, "reasoning");
  });

  test("a stop sequence inside the reasoning does not stop; in the answer it does", () => {
    const t = loop(chat({ limits: { stop: ["END"] } }));
    assert.equal(t.feed("<think>", "no END here", "</think>", "done END more"), false);
    t.l.finish();
    assert.equal(t.text("reasoning"), "no END here");
    assert.equal(t.text("text-delta"), "done ");
    assert.equal(t.l.stopSequence, "END");
  });

  test("JSON that ends inside the reasoning does not end the answer; tool calls are parsed from the answer", () => {
    const t = loop(chat({ tools: [weather] }), 100, true);
    t.feed("<think>", '{"name":"weather","arguments":{}}', "</think>", '{"name":"weather","arguments":{}}');
    t.l.finish();
    assert.equal(t.l.reason, "tool-calls");
    assert.equal(t.events.filter((e) => e.type === "tool-call").length, 1);
  });

  test("the budget: when spent, reasoning ends and the closing marker is put into the context, once", () => {
    const t = loop(chat({ reasoning: { budgetTokens: 3 } }));
    t.feed("<think>", "a", "b");
    assert.equal(t.l.takeInjection(), "</think>\n\n", "spent after 3 reasoning tokens");
    assert.equal(t.l.takeInjection(), undefined);
    t.l.injected([t.v.id("</think>"), t.v.id("\n\n")]);
    t.feed("Answer");
    t.l.finish();
    assert.equal(t.text("reasoning"), "ab");
    assert.equal(t.text("text-delta"), "Answer");
    assert.equal(t.l.completionTokens, 6, "the forced marker's tokens count");
  });

  test("budget 0 (think: false, effort none): closed as soon as it opens; no budget: never forced", () => {
    const zero = loop(chat({ reasoning: { budgetTokens: 0 } }));
    zero.feed("<think>");
    assert.equal(zero.l.takeInjection(), "</think>\n\n");
    const free = loop(chat());
    free.feed("<think>", ...Array.from({ length: 50 }, () => "x"));
    assert.equal(free.l.takeInjection(), undefined);
    const plain = loop(chat({ reasoning: { budgetTokens: 0 } }));
    plain.feed("Just", " answer");
    assert.equal(plain.l.takeInjection(), undefined, "a model that does not reason is left alone");
  });

  test("a chat answer that opens with whitespace sends its first text with its first token", () => {
    const t = loop(chat());
    t.feed("\n");
    assert.equal(t.text("text-delta"), "\n", "sent before the next token");
    t.feed("\n", "\n");
    assert.equal(t.text("text-delta"), "\n\n\n");
    t.l.finish();
    assert.equal(t.text("text-delta"), "\n\n\n");
  });

  test("completions are raw text: no reasoning is separated", () => {
    const v = new FakeVocabulary();
    const events: ChatEvent[] = [];
    const l = new TokenLoop(
      v,
      { kind: "completion", model: "m", prompt: "", sampling: {}, limits: {} },
      { maxTokens: 10, templateStops: [], json: false, promptTail: [] },
      (e) => events.push(e),
    );
    for (const piece of ["<think>", "x", "</think>"]) l.push(v.id(piece));
    l.finish();
    assert.ok(events.every((e) => e.type === "text-delta"));
    assert.equal(events.map((e) => (e.type === "text-delta" ? e.text : "")).join(""), "<think>x</think>");
  });
});
