/**
 * Whether an owner's regular expression may scan request bodies. JavaScript's engine backtracks, and the body is
 * the attacker's: a pattern with repetition inside repetition (`(a+)+`, `(\w+\.)*`), repeated alternation
 * (`(a|ab)*`) or back-references can take exponential time, and any unbounded `+`/`*` is quadratic over a long
 * input. So patterns with nested or alternated repetition, back-references or lookaround are refused, and every
 * unbounded repetition is capped (`+` → `{1,64}`): an attempt then costs a bounded number of steps. The scan also
 * runs the pattern over bounded windows under a time budget that fails closed (src/privacy/scan.ts).
 */

/** The most characters one unbounded repetition of an owner pattern may match. */
export const OWNER_REPEAT_CAP = 64;
/** The most steps one attempt of an owner pattern may take, estimated as the product of its repetition bounds. */
export const OWNER_ATTEMPT_CAP = 1 << 20;

export type PatternCheck = { ok: true; source: string } | { ok: false; reason: string };

/** The pattern rewritten with capped repetition, or why it is refused (a sentence for the owner). */
export function checkOwnerPattern(source: string): PatternCheck {
  let out = "";
  // Per open group: does it contain a quantifier or an alternation, and where it started in `out`.
  const groups: { repeats: boolean; alternates: boolean }[] = [];
  let lastAtom: { repeats: boolean; alternates: boolean } | null = null;
  let cost = 1;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k")
        return {
          ok: false,
          reason: "back-references (\\1, \\k<name>) are not allowed: they cannot be scanned in linear time",
        };
      out += char + next;
      i++;
      if (!inClass) lastAtom = { repeats: false, alternates: false };
      continue;
    }
    if (inClass) {
      if (char === "]") inClass = false;
      out += char;
      if (!inClass) lastAtom = { repeats: false, alternates: false };
      continue;
    }
    if (char === "[") {
      inClass = true;
      out += char;
      continue;
    }
    if (char === "(") {
      if (/^\(\?<?[=!]/.test(source.slice(i)))
        return { ok: false, reason: "lookahead and lookbehind are not allowed; use \\b for word boundaries" };
      groups.push({ repeats: false, alternates: false });
      out += char;
      lastAtom = null;
      continue;
    }
    if (char === ")") {
      const group = groups.pop();
      if (!group) return { ok: false, reason: "unbalanced parenthesis" };
      if (groups.length > 0) {
        groups.at(-1)!.repeats ||= group.repeats;
        groups.at(-1)!.alternates ||= group.alternates;
      }
      out += char;
      lastAtom = group;
      continue;
    }
    if (char === "|") {
      if (groups.length > 0) groups.at(-1)!.alternates = true;
      out += char;
      lastAtom = null;
      continue;
    }
    const quantifier = /^(?:[*+?]|\{(\d+)(,(\d*))?\})/.exec(source.slice(i));
    if (quantifier) {
      const text = quantifier[0];
      const min = text === "+" ? 1 : quantifier[1] ? Number(quantifier[1]) : 0;
      const unbounded = text === "*" || text === "+" || (quantifier[2] !== undefined && quantifier[3] === "");
      const max = text === "?" ? 1 : unbounded ? Math.max(min, OWNER_REPEAT_CAP) : Number(quantifier[3] ?? min);
      if (max > 1 && lastAtom && (lastAtom.repeats || lastAtom.alternates))
        return {
          ok: false,
          reason: `repetition of a group that itself repeats or has alternatives (at "${source.slice(0, i + text.length)}") can take exponential time; repeat a character class instead`,
        };
      out += unbounded ? `{${min},${max}}` : text;
      let j = i + text.length;
      if (source[j] === "?") {
        out += "?";
        j++;
      }
      i = j - 1;
      cost *= max + 1;
      if (cost > OWNER_ATTEMPT_CAP)
        return {
          ok: false,
          reason: `too many repetitions one after another (each unbounded one counts up to ${OWNER_REPEAT_CAP} characters): an attempt could take over ${OWNER_ATTEMPT_CAP} steps; use fixed counts like \\d{6}`,
        };
      if (max > 1 && groups.length > 0) groups.at(-1)!.repeats = true;
      lastAtom = null;
      continue;
    }
    out += char;
    lastAtom = { repeats: false, alternates: false };
  }
  if (groups.length > 0) return { ok: false, reason: "unbalanced parenthesis" };
  return { ok: true, source: out };
}
