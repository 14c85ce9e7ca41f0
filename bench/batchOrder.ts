// node --import tsx bench/batchOrder.ts [model.gguf]   (THREADS=n, default 2; STEPS=n, default 8)
//
// A diagnostic for the cost of one generating decode (one token of each of several sequences, each with logits) by
// the order the sequences go into the batch, node-llama-cpp alone. node-llama-cpp's contexts keep a KV cache per
// sequence, and llama.cpp computes such a batch in one pass only while the sequence ids go up by one in batch order
// (`llama_batch_allocr::split_equal`, sequential); otherwise in several, each about a whole decode's cost on a CPU.
// This is why freehold's runner asks for the sequences' next tokens in slot order (src/engine/runner/decodeStep.ts).
import type { LlamaContextSequence } from "node-llama-cpp";
import { loadAverage, loadDiagnosticContext, madeUpTokens, median } from "./diagnosticContext.js";

const steps = Number(process.env.STEPS ?? 8);
const { threads, context, dispose } = await loadDiagnosticContext();
// node-llama-cpp 3.21's native context and sequence fields (a diagnostic only, as test/helpers/decodeCounter.ts).
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): void;
  decodeBatch(): Promise<void>;
}
interface SequenceInternals {
  _sequenceId: number;
  _nextTokenIndex: number;
}
const native = (context as unknown as { _ctx: NativeContext })._ctx;
const sequences = Array.from({ length: 4 }, () => context.getSequence());
const internals = (sequence: LlamaContextSequence) => sequence as unknown as SequenceInternals;

for (const [i, sequence] of sequences.entries())
  await sequence.evaluateWithoutGeneratingNewTokens(madeUpTokens(i + 1, 32));
console.log(`threads ${threads}; ${steps} decodes each, the first two not counted`);
for (const order of JSON.parse(
  process.env.ORDERS ?? "[[0],[0,1,2,3],[2,3,0,1],[3,2,1,0],[0,1,3],[1,2,3]]",
) as number[][]) {
  const times: number[] = [];
  for (let step = 0; step < steps; step++) {
    native.initBatch(order.length);
    for (const index of order) {
      const sequence = internals(sequences[index]!);
      // One token with its logits, as a generating step asks (the KV cell is written, so the position moves on).
      native.addToBatch(
        sequence._sequenceId,
        sequence._nextTokenIndex++,
        Uint32Array.from(madeUpTokens(step * 4 + index, 1)),
        Uint32Array.from([0]),
      );
    }
    const started = performance.now();
    await native.decodeBatch();
    times.push(performance.now() - started);
  }
  const ids = order.map((index) => internals(sequences[index]!)._sequenceId).join(",");
  console.log(`batch order ${ids.padEnd(8)} ${median(times.slice(2)).toFixed(1).padStart(7)} ms`);
}
console.log(`load average ${loadAverage()}`);
await dispose();
