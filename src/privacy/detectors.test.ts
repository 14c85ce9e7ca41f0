import assert from "node:assert/strict";
import { test } from "node:test";
import { classifyText, compileDetectors } from "./classifier.js";
import { builtInDetectors, type Detector } from "./detectors.js";
import { scanTexts } from "./scan.js";

/**
 * The standing timing suite (issue 13, item 3): every detector, built in or compiled from an owner's rules, on
 * 1 MB inputs made of its own near-matches, the shapes that make a backtracking pattern quadratic or worse. The
 * bound is generous because the suite runs on a shared 2-core machine (see boundFor); the old e-mail pattern took
 * 6 s on 80 KB and would take minutes on 1 MB, so a quadratic regression is unmistakable.
 */
const MB = 1 << 20;
const BOUND_MS = 1000;

function fill(unit: string, size = MB): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** Near-matches per detector, plus shapes any of them might choke on. */
const adversarial: Record<string, string[]> = {
  email: ["a.", "a@", "@", "a.a@", "a@a.", "a@a.a.", "-.", "a%+"].map((unit) => fill(unit)),
  "api-key": ["sk-", "sk-a", "ghp_", "xoxb-", "AIza", "glpat-", "hf_", "AKIA"].map((unit) => fill(unit)),
  jwt: ["eyJ", "eyJaaaaaaaa.", "eyJ-", "eyJaaaaaaaaaa.eyJaaaaaaaaaa-"].map((unit) => fill(unit)),
  "private-key": ["-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN A ", "-----END PRIVATE KEY-----", "-----"].map(
    (unit) => fill(unit),
  ),
  iban: ["DE89", "A", "DE89 ", "AB12 AB12 ", "DE893704004405320130000"].map((unit) => fill(unit)),
  card: ["1", "1-", "1 ", "4111 1111 1111 1111 ", "12-", "9"].map((unit) => fill(unit)),
  ssn: ["123-45-", "1-", "123-"].map((unit) => fill(unit)),
  phone: ["1-", "12 ", "1234-", "+1 ", "(12) ", "12.", "+44 20 7946 0958 "].map((unit) => fill(unit)),
  ipv4: ["1.", "1.1.1.1.", "999."].map((unit) => fill(unit)),
  ipv6: [":", "a:", "1:1:", "a::", "ffff:"].map((unit) => fill(unit)),
  "high-entropy": ["Ab1+", "Zx8kQ2vN7pL4mR9tW3yB6cF1hJ5sD0gA ", "a", "A1b2C3d4-"].map((unit) => fill(unit)),
};

/**
 * The bound for one 1 MB input: 1 s, or 200 times one plain pass over the same text when the machine is busier
 * than that allows (the suite shares 2 cores with other work). A quadratic detector takes minutes on 1 MB, far
 * past either.
 */
function boundFor(text: string): number {
  const started = performance.now();
  let sum = 0;
  for (let i = 0; i < text.length; i++) sum = (sum + text.charCodeAt(i)) | 0;
  const pass = performance.now() - started + (sum === -1 ? 1 : 0);
  return Math.max(BOUND_MS, 200 * pass);
}

function time(detector: Detector, text: string): number {
  const started = performance.now();
  for (const _ of detector.find(text));
  return performance.now() - started;
}

const everyInput = Object.values(adversarial).flat();

for (const detector of builtInDetectors) {
  test(`detector ${detector.rule} runs in linear time on 1 MB adversarial inputs`, () => {
    const own = adversarial[detector.rule];
    assert.ok(own && own.length >= 3, `detector ${detector.rule} needs its own adversarial inputs here`);
    for (const text of [...own, ...everyInput]) {
      const ms = time(detector, text);
      assert.ok(
        ms < boundFor(text),
        `${detector.rule} took ${ms.toFixed(0)} ms on 1 MB of ${JSON.stringify(text.slice(0, 24))}…`,
      );
    }
  });
}

test("owner patterns and keyword lists run in bounded time; patterns that cannot are refused with a reason", async () => {
  const [pattern, keywords] = compileDetectors({
    patterns: { "employee-id": "EMP-\\d+" },
    keywords: { project: ["Project Falcon", "bluebird"] },
    disable: builtInDetectors.map((detector) => detector.rule),
  });
  for (const text of [fill("EMP-"), fill("EMP-1"), fill("a"), fill("a@a."), fill("Project "), fill("bluebir")]) {
    for (const detector of [pattern!, keywords!]) {
      const ms = time(detector, text);
      assert.ok(
        ms < boundFor(text),
        `${detector.rule} took ${ms.toFixed(0)} ms on ${JSON.stringify(text.slice(0, 12))}…`,
      );
    }
  }
  // A pattern that passes the checks can still be slow (each attempt bounded, but by a large constant): the scan's
  // time budget stops it, and the request counts as unscannable rather than unchecked.
  const slow = compileDetectors({ patterns: { fancy: "\\w+@\\w+\\.\\w+" }, disable: ["high-entropy"] });
  const started = performance.now();
  const result = await scanTexts([fill("a")], slow, { maxChars: 2 * MB, maxMs: 150 });
  const ms = performance.now() - started;
  assert.ok(result.unscannable !== null || ms < BOUND_MS, "either fast or stopped by the budget");
  assert.ok(ms < 150 + BOUND_MS, `the budget stopped the scan after ${ms.toFixed(0)} ms`);
  assert.match(result.unscannable ?? "", /longer than the budget/, "a slow owner pattern fails closed");
  for (const [source, reason] of [
    ["(a+)+b", /repetition of a group/],
    ["(\\w+\\.)*x", /repetition of a group/],
    ["(a|ab)*c", /repetition of a group/],
    ["(x)\\1", /back-references/],
    ["(?=a)b", /lookahead/],
    ["\\w+\\w+\\w+\\w+x", /too many repetitions/],
  ] as const)
    assert.throws(() => compileDetectors({ patterns: { bad: source } }), reason, source);
});

test("owner patterns still find what they describe, across window edges, capped at 64 repeats", () => {
  const detectors = compileDetectors({ patterns: { "employee-id": "EMP-\\d+" }, disable: ["card", "phone"] });
  const text = `${"x ".repeat(2040)}EMP-004211 and ${"y ".repeat(3000)}EMP-99`;
  const found = classifyText(text, detectors).filter((finding) => finding.rule === "employee-id");
  assert.deepEqual(
    found.map((finding) => finding.value),
    ["EMP-004211", "EMP-99"],
  );
});

test("a scan over its size or time budget is unscannable (fails closed), and yields to the event loop", async () => {
  const detectors = compileDetectors();
  const big = await scanTexts([fill("a.", 3000)], detectors, { maxChars: 2000, maxMs: 1000 });
  assert.match(big.unscannable ?? "", /more than the scan budget of 2000/);
  const slow = await scanTexts([fill("1.1.1.1 ", 4 * MB)], detectors, { maxChars: 8 * MB, maxMs: 5 });
  assert.match(slow.unscannable ?? "", /longer than the budget of 5 ms/);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const whole = await scanTexts([fill("write to a@b.example ", MB)], detectors);
  clearInterval(timer);
  assert.equal(whole.unscannable, null);
  assert.equal(whole.findings[0]!.length, Math.floor(MB / 21) + 1 - (MB % 21 < 12 ? 1 : 0));
  assert.ok(ticks > 2, `the event loop ran ${ticks} times during the scan`);
});
