import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSuite, SuiteError } from "./suite.js";

const good = `
name: demo
threshold: 0.9
repeat: 3
defaults: { temperature: 0, max_tokens: 8 }
judge: cloud/judge
cases:
  - id: greet
    messages:
      - { role: user, content: "Say hi to {{who}}" }
    vars: { who: Lily }
    options: { max_tokens: 4 }
    assert:
      - { type: icontains, value: "{{who}}" }
      - { type: judge, rubric: "Greets {{who}} politely" }
  - prompt: Once upon a time
    assert: [{ type: contains, value: [a, b], match: any }]
`;

test("a suite resolves variables, defaults and case ids", () => {
  const suite = parseSuite(good, "demo.yaml");
  assert.equal(suite.name, "demo");
  assert.equal(suite.threshold, 0.9);
  assert.equal(suite.repeat, 3);
  assert.equal(suite.cases[0]!.messages![0]!.content, "Say hi to Lily");
  assert.deepEqual(suite.cases[0]!.options, { temperature: 0, max_tokens: 4 });
  assert.deepEqual(suite.cases[0]!.assert, [
    { type: "icontains", value: "Lily", match: "all" },
    { type: "judge", rubric: "Greets Lily politely" },
  ]);
  assert.equal(suite.cases[1]!.id, "case-2");
  assert.equal(suite.cases[1]!.prompt, "Once upon a time");
  assert.equal(parseSuite("cases: [{prompt: x, assert: [{type: is-json}]}]", "dir/named.yaml").name, "named");
});

/** Each bad suite, and the start of the one-line error it must give. */
const bad: [string, string, RegExp][] = [
  ["not a mapping", "- a\n- b\n", /^s\.yaml:1: \(top level\): a suite is a mapping/],
  ["no cases", "name: x\n", /^s\.yaml:1: cases: /],
  ["yaml syntax", "cases: [\n", /^s\.yaml:\d+: /],
  [
    "unknown top-level field",
    "cases: [{prompt: x, assert: [{type: is-json}]}]\nthreshhold: 1\n",
    /^s\.yaml:2: threshhold: unknown field/,
  ],
  [
    "unknown case field",
    "cases:\n  - id: a\n    promt: x\n    assert: [{type: is-json}]\n",
    /^s\.yaml:3: cases\[0\] \(a\): promt: unknown field/,
  ],
  [
    "both messages and prompt",
    "cases:\n  - id: a\n    prompt: x\n    messages: [{role: user, content: y}]\n    assert: [{type: is-json}]\n",
    /cases\[0\] \(a\): messages: give either messages or prompt/,
  ],
  [
    "no assertions",
    "cases:\n  - id: a\n    prompt: x\n    assert: []\n",
    /cases\[0\] \(a\): assert: needs at least one/,
  ],
  [
    "unknown assertion type",
    "cases:\n  - id: a\n    prompt: x\n    assert: [{type: contain, value: y}]\n",
    /cases\[0\] \(a\): assert\[0\](\.type)?: .*(known type|Invalid)/,
  ],
  [
    "assertion value of the wrong type",
    "cases:\n  - id: a\n    prompt: x\n    assert:\n      - type: max-tokens\n        value: many\n",
    /^s\.yaml:6: cases\[0\] \(a\): assert\[0\]\.value: /,
  ],
  [
    "bad regex",
    "cases:\n  - id: a\n    prompt: x\n    assert:\n      - type: regex\n        value: '(x'\n",
    /^s\.yaml:6: cases\[0\] \(a\): assert\[0\]\.value: not a valid regular expression/,
  ],
  [
    "unknown variable",
    "cases:\n  - id: a\n    prompt: 'hi {{name}}'\n    vars: {who: x}\n    assert: [{type: is-json}]\n",
    /cases\[0\] \(a\): prompt: \{\{name\}\} is not among the case's vars \(who\)/,
  ],
  [
    "judge without a judge model",
    "cases:\n  - id: a\n    prompt: x\n    assert: [{type: judge, rubric: good}]\n",
    /cases\[0\] \(a\): assert\[0\]\.model: a judge assertion needs a judge model/,
  ],
  [
    "similar without an embedding model",
    "cases:\n  - id: a\n    prompt: x\n    assert: [{type: similar, value: y}]\n",
    /assert\[0\]\.model: a similar assertion needs an embedding model/,
  ],
  [
    "agrees-with without a reference",
    "judge: j\ncases:\n  - id: a\n    prompt: x\n    assert: [{type: agrees-with}]\n",
    /assert\[0\]\.model: agrees-with needs a reference/,
  ],
  [
    "duplicate case ids",
    "cases:\n  - {id: a, prompt: x, assert: [{type: is-json}]}\n  - {id: a, prompt: y, assert: [{type: is-json}]}\n",
    /^s\.yaml:3: cases\[1\] \(a\): id: the id "a" is used by an earlier case/,
  ],
  [
    "threshold out of range",
    "threshold: 80\ncases: [{prompt: x, assert: [{type: is-json}]}]\n",
    /^s\.yaml:1: threshold: /,
  ],
  [
    "bad option",
    "cases:\n  - id: a\n    prompt: x\n    options: {temperature: hot}\n    assert: [{type: is-json}]\n",
    /cases\[0\] \(a\): options\.temperature: /,
  ],
];

for (const [name, text, expected] of bad)
  test(`suite error: ${name}`, () => {
    assert.throws(
      () => parseSuite(text, "s.yaml"),
      (error: unknown) => {
        assert.ok(error instanceof SuiteError);
        assert.match(error.message, expected);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      },
    );
  });
