import { checkOwnerPattern } from "../core/patternSafety.js";
import { builtInDetectors, type Detector, type Finding, type Span } from "./detectors.js";

/** The owner's own rules, from freehold.yaml's `privacy` section. */
export interface OwnerRules {
  /** name → regular expression source (matched case-sensitively unless it starts with (?i)). */
  patterns?: Readonly<Record<string, string>>;
  /** name → words or phrases matched case-insensitively on word boundaries. */
  keywords?: Readonly<Record<string, readonly string[]>>;
  /** Built-in detector rules to switch off (e.g. "ipv4", "high-entropy"). */
  disable?: readonly string[];
}

/** An owner pattern the scanner refuses to run (nested repetition, back-references…); the message says why. */
export class UnsafePatternError extends Error {
  constructor(
    readonly rule: string,
    reason: string,
  ) {
    super(`privacy pattern ${rule}: ${reason}`);
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Owner patterns run over windows this long (overlapping by WINDOW_OVERLAP), so one call has bounded cost. */
const WINDOW = 4096;
const WINDOW_OVERLAP = 1024;

/**
 * An owner's pattern as a detector. Its repetition is capped (core/patternSafety.ts), so one attempt is bounded;
 * it runs over overlapping windows so that one regex call is bounded too, and the scan's time budget can stop a
 * slow one between windows. A window edge can add a match (`\b` at a cut), never lose one shorter than the overlap.
 */
function windowedDetector(rule: string, pattern: RegExp): Detector {
  return {
    rule,
    kind: rule,
    *find(text: string): Generator<Span | null> {
      let emittedEnd = 0;
      for (let from = 0; from < text.length; from += WINDOW - WINDOW_OVERLAP) {
        const window = text.slice(from, from + WINDOW);
        const last = from + WINDOW >= text.length;
        for (const match of window.matchAll(pattern)) {
          const start = from + match.index;
          const end = start + match[0].length;
          if (match[0].length === 0 || start < emittedEnd) continue;
          // Matches starting in the overlap are found again, whole, by the next window.
          if (!last && match.index >= WINDOW - WINDOW_OVERLAP) break;
          emittedEnd = end;
          yield { start, end };
        }
        if (last) break;
        yield null;
      }
    },
  };
}

/**
 * Compiles owner rules ahead of the built-ins (the owner's name for a finding wins where both match). Throws
 * UnsafePatternError for a pattern that could not be scanned in bounded time (freehold.yaml's check reports the
 * same reason at load).
 */
export function compileDetectors(rules: OwnerRules = {}): Detector[] {
  const owner: Detector[] = [];
  for (const [name, source] of Object.entries(rules.patterns ?? {})) {
    const insensitive = source.startsWith("(?i)");
    const checked = checkOwnerPattern(insensitive ? source.slice(4) : source);
    if (!checked.ok) throw new UnsafePatternError(name, checked.reason);
    owner.push(windowedDetector(name, new RegExp(checked.source, insensitive ? "gi" : "g")));
  }
  for (const [name, words] of Object.entries(rules.keywords ?? {})) {
    if (words.length === 0) continue;
    const alternatives = words.map((word) => escapeRegExp(word)).join("|");
    // Literal alternatives between boundary checks: each attempt costs at most the longest word.
    owner.push(windowedDetector(name, new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, "giu")));
  }
  const disabled = new Set(rules.disable ?? []);
  return [...owner, ...builtInDetectors.filter((detector) => !disabled.has(detector.rule))];
}

/**
 * Adds `candidates` (sorted, non-overlapping) to `taken` (sorted, non-overlapping), dropping any that overlap a
 * finding already taken: one merge pass, so thousands of findings stay linear.
 */
export function mergeFindings(taken: Finding[], candidates: Finding[]): Finding[] {
  if (candidates.length === 0) return taken;
  const merged: Finding[] = [];
  let t = 0;
  let lastEnd = -1;
  for (const candidate of candidates) {
    // A detector's spans never overlap (its contract); should one, the first wins rather than corrupt redaction.
    if (candidate.start < lastEnd) continue;
    lastEnd = candidate.end;
    while (t < taken.length && taken[t]!.end <= candidate.start) merged.push(taken[t++]!);
    if (t < taken.length && taken[t]!.start < candidate.end) continue;
    merged.push(candidate);
  }
  while (t < taken.length) merged.push(taken[t++]!);
  return merged;
}

/** Every finding in `text`, earliest first; where two rules overlap, the earlier rule in `detectors` wins. */
export function classifyText(text: string, detectors: readonly Detector[]): Finding[] {
  let taken: Finding[] = [];
  for (const detector of detectors) {
    const found: Finding[] = [];
    for (const span of detector.find(text))
      if (span)
        found.push({ kind: detector.kind, rule: detector.rule, ...span, value: text.slice(span.start, span.end) });
    taken = mergeFindings(taken, found);
  }
  return taken;
}

/** Counts per kind ("email": 2), for the audit trail: kinds and counts, never values. */
export function countKinds(findings: readonly Finding[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const finding of findings) counts[finding.kind] = (counts[finding.kind] ?? 0) + 1;
  return counts;
}
