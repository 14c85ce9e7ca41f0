import { builtInDetectors, type Detector, type Finding } from "./detectors.js";

/** The owner's own rules, from freehold.yaml's `privacy` section. */
export interface OwnerRules {
  /** name → regular expression source (matched case-sensitively unless it starts with (?i)). */
  patterns?: Readonly<Record<string, string>>;
  /** name → words or phrases matched case-insensitively on word boundaries. */
  keywords?: Readonly<Record<string, readonly string[]>>;
  /** Built-in detector rules to switch off (e.g. "ipv4", "high-entropy"). */
  disable?: readonly string[];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Compiles owner rules ahead of the built-ins (the owner's name for a finding wins where both match). */
export function compileDetectors(rules: OwnerRules = {}): Detector[] {
  const owner: Detector[] = [];
  for (const [name, source] of Object.entries(rules.patterns ?? {})) {
    const insensitive = source.startsWith("(?i)");
    owner.push({
      rule: name,
      kind: name,
      pattern: new RegExp(insensitive ? source.slice(4) : source, insensitive ? "gi" : "g"),
    });
  }
  for (const [name, words] of Object.entries(rules.keywords ?? {})) {
    if (words.length === 0) continue;
    const alternatives = words.map((word) => escapeRegExp(word)).join("|");
    owner.push({
      rule: name,
      kind: name,
      pattern: new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, "giu"),
    });
  }
  const disabled = new Set(rules.disable ?? []);
  return [...owner, ...builtInDetectors.filter((detector) => !disabled.has(detector.rule))];
}

/** Every finding in `text`, earliest first; where two rules overlap, the earlier rule in `detectors` wins. */
export function classifyText(text: string, detectors: readonly Detector[]): Finding[] {
  const taken: Finding[] = [];
  for (const detector of detectors) {
    for (const match of text.matchAll(detector.pattern)) {
      const value = match[0];
      if (value.length === 0) continue;
      const start = match.index;
      const end = start + value.length;
      if (detector.accept && !detector.accept(value)) continue;
      if (taken.some((finding) => start < finding.end && end > finding.start)) continue;
      taken.push({ kind: detector.kind, rule: detector.rule, start, end, value });
    }
  }
  return taken.sort((a, b) => a.start - b.start);
}

/** Counts per kind ("email": 2), for the audit trail: kinds and counts, never values. */
export function countKinds(findings: readonly Finding[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const finding of findings) counts[finding.kind] = (counts[finding.kind] ?? 0) + 1;
  return counts;
}
