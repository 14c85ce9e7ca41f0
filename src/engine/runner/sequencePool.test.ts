import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";
import { SequencePool } from "./sequencePool.js";

/** A stand-in for node-llama-cpp's sequence: its cached tokens, and a clear that takes `clearMs`. */
class FakeSequence {
  tokens: number[] = [];
  constructor(private readonly clearMs = 0) {}
  get nextTokenIndex(): number {
    return this.tokens.length;
  }
  compareContextTokens(tokens: number[]): { firstDifferentIndex: number } {
    let i = 0;
    while (i < this.tokens.length && i < tokens.length && this.tokens[i] === tokens[i]) i++;
    return { firstDifferentIndex: i };
  }
  async clearHistory(): Promise<void> {
    await sleep(this.clearMs);
    this.tokens = [];
  }
}

function pool(count: number, clearMs = 0) {
  const made: FakeSequence[] = [];
  const context = {
    getSequence: () => {
      const sequence = new FakeSequence(clearMs);
      made.push(sequence);
      return sequence;
    },
  } as unknown as LlamaContext;
  const sequences = new SequencePool(context, count);
  const slot = (sequence: LlamaContextSequence) => made.indexOf(sequence as unknown as FakeSequence);
  return { sequences, made, slot };
}

const prompt = (first: number, length = 8) => Array.from({ length }, (_, i) => first + i) as Token[];

test("new requests take slots next to the busy ones, so the generating slots stay consecutive", async () => {
  const { sequences, slot } = pool(5);
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await sequences.acquire(prompt(100 * i)));
  assert.deepEqual(held.map(slot), [0, 1, 2, 3]);
  // 0 and 2 finish; the next request goes next to the busy 1 and 3 (slot 2 or 0), not to the never-used 4.
  sequences.release(held[0]!);
  sequences.release(held[2]!);
  const next = await sequences.acquire(prompt(900));
  assert.ok([0, 2].includes(slot(next)), `took slot ${slot(next)}`);
});

test("a cached prefix of 16 tokens or more beats keeping the slots consecutive; a shorter one does not", async () => {
  const { sequences, made, slot } = pool(5);
  const held = [];
  for (let i = 0; i < 3; i++) held.push(await sequences.acquire(prompt(100 * i)));
  // Slot 4 holds a conversation; slots 0-2 are busy, 3 is empty.
  made[4]!.tokens = prompt(500, 40);
  const followUp = await sequences.acquire([...prompt(500, 40), 7, 8] as Token[]);
  assert.equal(slot(followUp), 4, "the follow-up turn lands where its conversation is");
  sequences.release(followUp);
  made[4]!.tokens = prompt(500, 40);
  made[3]!.tokens = prompt(700, 20);
  // Sharing only 10 tokens with slot 4 is not worth the gap: slot 3 (next to 0-2; both need a trim) wins.
  const other = await sequences.acquire([...prompt(500, 10), 1, 2, 3] as Token[]);
  assert.equal(slot(other), 3);
});

test("a request arriving while idle slots are being emptied waits for that and sees every slot", async () => {
  const { sequences, made, slot } = pool(5, 30);
  const held = [];
  for (let i = 0; i < 5; i++) held.push(await sequences.acquire(prompt(100 * i)));
  for (let i = 0; i < 5; i++) made[i]!.tokens = prompt(100 * i);
  // Released 2, 1, 3, 0, 4: all idle, so the pool empties all but the two most recent (4 and 0), starting with 3
  // (30 ms each). A burst of four arriving now, without waiting, would have only 0, 1, 2 and 4 to choose from.
  for (const i of [2, 1, 3, 0, 4]) sequences.release(held[i]!);
  const burst = [];
  for (const i of [0, 1, 2, 3]) burst.push(await sequences.acquire(prompt(1000 + 100 * i)));
  const slots = burst.map(slot).sort((a, b) => a - b);
  assert.ok(
    slots.every((s, i) => i === 0 || s === slots[i - 1]! + 1),
    `the burst took slots ${slots.join(", ")}`,
  );
});
