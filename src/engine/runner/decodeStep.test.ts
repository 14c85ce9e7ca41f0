import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DecodeStep } from "./decodeStep.js";

/** A fake token source: logs when its consumer asks for a token and yields `count` tokens, each after `delay(i)` ms. */
function source(name: string, count: number, log: string[], delay: (i: number) => number = () => 0) {
  return (async function* () {
    for (let i = 1; i <= count; i++) {
      log.push(`${name} asks ${i}`);
      await sleep(delay(i));
      yield i;
    }
  })();
}

async function consume(name: string, tokens: AsyncIterable<number>, log: string[], stopAfter = Infinity) {
  const got: number[] = [];
  for await (const token of tokens) {
    log.push(`${name} got ${token}`);
    got.push(token);
    if (got.length >= stopAfter) break;
  }
  return got;
}

test("requests ask for each next token together: a fast one waits for a slow one's token", async () => {
  const step = new DecodeStep();
  const log: string[] = [];
  const fast = consume("A", step.pace(source("A", 5, log)), log);
  // Both have their first tokens at about the same time; from the third on, B's come 20 ms late.
  const slow = consume("B", step.pace(source("B", 5, log, (i) => (i >= 3 ? 20 : 0))), log);
  assert.deepEqual(await Promise.all([fast, slow]), [
    [1, 2, 3, 4, 5],
    [1, 2, 3, 4, 5],
  ]);
  // Once both are generating, neither asks for a token while the other waits for one, unless they asked together
  // (one right after the other): each decode would carry both. Without the pacing, A asks for 3, 4 and 5 while B
  // still waits for its third.
  const inFlight = { A: false, B: false };
  const joined = { A: false, B: false };
  log.forEach((entry, index) => {
    const [name, what] = entry.split(" ") as ["A" | "B", string];
    const other = name === "A" ? "B" : "A";
    if (what === "got") {
      inFlight[name] = false;
      joined[name] = true;
      return;
    }
    inFlight[name] = true;
    if (joined.A && joined.B && inFlight[other])
      assert.equal(log[index - 1], `${other} asks ${log[index - 1]?.split(" ")[2]}`, `at ${index}: ${log.join(", ")}`);
  });
});

test("a request that ends, breaks off or fails releases the others waiting for it", async () => {
  for (const ending of ["ends", "breaks", "fails"] as const) {
    const step = new DecodeStep();
    const log: string[] = [];
    const short =
      ending === "fails"
        ? (async function* () {
            yield 1;
            await sleep(10);
            throw new Error("decode failed");
          })()
        : source("B", ending === "ends" ? 1 : 5, log, () => 10);
    const long = consume("A", step.pace(source("A", 4, log)), log);
    const other = consume("B", step.pace(short), log, ending === "breaks" ? 1 : Infinity).catch(
      (error: Error) => error.message,
    );
    const [a, b] = await Promise.all([long, other]);
    assert.deepEqual(a, [1, 2, 3, 4], ending);
    assert.deepEqual(b, ending === "fails" ? "decode failed" : [1], ending);
    assert.equal(step.generating, 0, ending);
  }
});

test("a request still evaluating its prompt is not waited for; it joins with its first token", async () => {
  const step = new DecodeStep();
  const log: string[] = [];
  // B's first token comes only once A has generated four: if A waited for B before then, neither would ever finish.
  let aHasFour!: () => void;
  const fourth = new Promise<void>((resolve) => {
    aHasFour = resolve;
  });
  const b = (async function* () {
    log.push("B asks 1");
    await fourth;
    yield 1;
    log.push("B asks 2");
    yield 2;
  })();
  const a = (async () => {
    const got: number[] = [];
    for await (const token of step.pace(source("A", 6, log))) {
      got.push(token);
      log.push(`A got ${token}`);
      if (token === 4) aHasFour();
    }
    return got;
  })();
  const both = Promise.all([a, consume("B", step.pace(b), log)]);
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stuck: ${log.join(", ")}`)), 10_000);
  });
  const result = await Promise.race([both, stuck]).finally(() => clearTimeout(timer));
  assert.deepEqual(result, [
    [1, 2, 3, 4, 5, 6],
    [1, 2],
  ]);
  assert.ok(log.indexOf("A got 4") < log.indexOf("B got 1"));
  assert.equal(step.generating, 0);
});

test("one request alone is never held: its tokens flow without waiting for the event loop", async () => {
  const step = new DecodeStep();
  const instant = (async function* () {
    for (let i = 1; i <= 200; i++) yield i;
  })();
  let eventLoopTurned = false;
  setImmediate(() => {
    eventLoopTurned = true;
  });
  const got = await consume("A", step.pace(instant), []);
  assert.equal(got.length, 200);
  assert.equal(eventLoopTurned, false, "a lone request must not wait for a timer or another request");
});

test("requests ask for their next tokens in slot order, whatever order they arrived in", async () => {
  const step = new DecodeStep();
  const log: string[] = [];
  // First tokens come C, B, A (slots 2, 1, 0), within a microtask of each other; each later token takes 5 ms, so
  // all three are generating before anyone's second token. Without the ordering, the rounds go B, A, C (the order
  // they arrived at the step).
  const gates = new Map<string, () => void>();
  const opened = new Map(
    ["A", "B", "C"].map((name) => [name, new Promise<void>((resolve) => gates.set(name, resolve))] as const),
  );
  const sources = (["C", "A", "B"] as const).map((name) =>
    (async function* () {
      for (let i = 1; i <= 6; i++) {
        log.push(`${name} asks ${i}`);
        await (i === 1 ? opened.get(name) : sleep(5));
        yield i;
      }
    })(),
  );
  const runs = sources.map((tokens, i) => consume("CAB"[i]!, step.pace(tokens, [2, 0, 1][i]), []));
  await sleep(1);
  for (const name of ["C", "B", "A"]) gates.get(name)!();
  await Promise.all(runs);
  // Round k: the three asks for token k + 1 once all three generate (C's first came alone, before the others).
  for (const token of [3, 4, 5, 6]) {
    const asks = log.filter((entry) => entry.endsWith(`asks ${token}`)).map((entry) => entry.split(" ")[0]);
    assert.deepEqual(asks, ["A", "B", "C"], `token ${token}: ${log.join(", ")}`);
  }
});

test("an exclusive operation runs at a step boundary: nobody asks for a token until it is done", async () => {
  const step = new DecodeStep();
  const log: string[] = [];
  const a = consume(
    "A",
    step.pace(
      source("A", 6, log, () => 2),
      0,
    ),
    log,
  );
  const b = consume(
    "B",
    step.pace(
      source("B", 6, log, () => 2),
      1,
    ),
    log,
  );
  await sleep(5);
  const operation = step.exclusive(async () => {
    log.push("trim starts");
    await sleep(30);
    log.push("trim ends");
    return "trimmed";
  });
  assert.equal(await operation, "trimmed");
  await Promise.all([a, b]);
  const starts = log.indexOf("trim starts");
  const ends = log.indexOf("trim ends");
  // While it runs, the members finish the token they asked for but ask for no other.
  const between = log.slice(starts, ends).filter((entry) => entry.includes("asks"));
  assert.ok(between.length <= 2, `asks during the operation: ${between.join(", ")} (${log.join(", ")})`);
  assert.equal(log.filter((entry) => entry.endsWith("got 6")).length, 2);
  assert.equal(step.generating, 0);
});

test("a lone request waits for an exclusive operation too, and is never held otherwise", async () => {
  const step = new DecodeStep();
  const log: string[] = [];
  let done = false;
  const operation = step.exclusive(async () => {
    await sleep(20);
    done = true;
  });
  const tokens = consume("A", step.pace(source("A", 3, log), 0), log);
  const got = await tokens;
  await operation;
  assert.deepEqual(got, [1, 2, 3]);
  // A's second ask came only after the operation ended.
  assert.ok(done);
  assert.equal(log.indexOf("A asks 2") > log.indexOf("A got 1"), true);
});
