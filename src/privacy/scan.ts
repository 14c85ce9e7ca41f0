import { mergeFindings } from "./classifier.js";
import type { Detector, Finding } from "./detectors.js";

/**
 * Scanning under a budget that fails closed. Text larger than `maxChars`, or a scan that has used more than `maxMs`
 * of its own time, is reported unscannable, and the policy treats that as sensitive: nothing too big or too slow to
 * check leaves unchecked. The scan yields to the event loop every few milliseconds, so other requests (and
 * `/health`) are served while a large body is checked.
 */

export interface ScanBudget {
  /** Most characters (all strings together) one request may have scanned. */
  maxChars: number;
  /** Most milliseconds of scanning one request may use (its own time, not time spent waiting for others). */
  maxMs: number;
}

/** 2 M characters is beyond any context window a body is sent to (about 500 K tokens); 2 s of scanning is ~10 MB. */
export const defaultScanBudget: ScanBudget = { maxChars: 2_000_000, maxMs: 2_000 };

/** How long the scan runs before letting the event loop serve others. */
const SLICE_MS = 8;

export interface ScanResult {
  /** Per text, its findings (earliest first). */
  findings: Finding[][];
  /** Why (part of) the input could not be scanned, or null. */
  unscannable: string | null;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Classifies each of `texts` under one budget. `cache` (per request) lets bodies built for several targets share
 * the work for strings they have in common.
 */
export async function scanTexts(
  texts: readonly string[],
  detectors: readonly Detector[],
  budget: ScanBudget = defaultScanBudget,
  cache: Map<string, Finding[]> = new Map(),
): Promise<ScanResult> {
  const total = texts.reduce((sum, text) => sum + text.length, 0);
  if (total > budget.maxChars)
    return {
      findings: texts.map(() => []),
      unscannable: `${total} characters of text, more than the scan budget of ${budget.maxChars}`,
    };
  let spent = 0;
  let sliceStart = performance.now();
  const overBudget = () => spent + (performance.now() - sliceStart) > budget.maxMs;
  const pause = async () => {
    const now = performance.now();
    if (now - sliceStart < SLICE_MS) return;
    spent += now - sliceStart;
    await yieldToLoop();
    sliceStart = performance.now();
  };
  const findings: Finding[][] = [];
  for (const text of texts) {
    const known = cache.get(text);
    if (known) {
      findings.push(known);
      continue;
    }
    let taken: Finding[] = [];
    for (const detector of detectors) {
      const found: Finding[] = [];
      for (const span of detector.find(text)) {
        if (span)
          found.push({ kind: detector.kind, rule: detector.rule, ...span, value: text.slice(span.start, span.end) });
        if (overBudget()) return timedOut(texts, budget);
        await pause();
      }
      taken = mergeFindings(taken, found);
      if (overBudget()) return timedOut(texts, budget);
      await pause();
    }
    cache.set(text, taken);
    findings.push(taken);
  }
  return { findings, unscannable: null };
}

function timedOut(texts: readonly string[], budget: ScanBudget): ScanResult {
  return { findings: texts.map(() => []), unscannable: `scanning took longer than the budget of ${budget.maxMs} ms` };
}
