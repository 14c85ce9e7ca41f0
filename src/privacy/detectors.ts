import { isIPv6 } from "node:net";

/**
 * Built-in detectors for data that must not leave the machine unasked: personal data (e-mail, phone, payment card,
 * IBAN, US SSN, IP address) and secrets (API keys and tokens, private-key blocks, high-entropy strings).
 *
 * Every detector runs in time linear in its input, whatever the input: a request body is attacker-controlled, and
 * a backtracking pattern (`[…]+@[…]+(?:\.[…]+)*`) once took 6 s on 80 KB of `a.a.a.`. So a detector is either a
 * regular expression whose every attempt is bounded (fixed or bounded repetition, one greedy character-class run
 * with nothing after it that can fail), or a hand-written scanner over such runs that looks at each character a
 * bounded number of times. `src/privacy/detectors.test.ts` times each one on 1 MB of its own near-matches.
 */

export type FindingKind =
  | "email"
  | "phone"
  | "card"
  | "iban"
  | "ssn"
  | "ip"
  | "secret"
  | "private-key"
  | "high-entropy"
  /** Too large or too slow to scan within the budget: treated as sensitive (fails closed). */
  | "unscannable"
  | (string & {});

export interface Finding {
  kind: FindingKind;
  /** Which rule fired: a built-in detector's name or the owner's pattern / keyword list name. */
  rule: string;
  start: number;
  end: number;
  value: string;
}

export interface Span {
  start: number;
  end: number;
}

export interface Detector {
  rule: string;
  kind: FindingKind;
  /**
   * The spans this rule finds in `text`, in increasing order, not overlapping one another. A `null` is a pause
   * point: a scan under a time budget checks its clock there (long inputs with no match still get checked).
   */
  find(text: string): Iterable<Span | null>;
}

/** The Luhn checksum payment card numbers carry. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** ISO 13616 mod-97 check of an IBAN (spaces allowed). */
export function ibanValid(text: string): boolean {
  const iban = text.replaceAll(" ", "").toUpperCase();
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const char of rearranged) {
    const value = char >= "A" && char <= "Z" ? String(char.charCodeAt(0) - 55) : char;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

const asciiCounts = new Int32Array(128);

/** Shannon entropy in bits per character. */
export function entropy(text: string): number {
  // The common case (key-like runs are ASCII) without a Map: high-entropy runs can be many.
  asciiCounts.fill(0);
  let ascii = true;
  for (let i = 0; i < text.length && ascii; i++) {
    const code = text.charCodeAt(i);
    if (code < 128) asciiCounts[code]!++;
    else ascii = false;
  }
  if (ascii) {
    let bits = 0;
    for (const count of asciiCounts) {
      if (count === 0) continue;
      const p = count / text.length;
      bits -= p * Math.log2(p);
    }
    return bits;
  }
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** Matches of a pattern whose attempts are bounded, kept when `accept` agrees. */
function* matches(text: string, pattern: RegExp, accept?: (match: string) => boolean): Generator<Span> {
  for (const match of text.matchAll(pattern)) {
    if (match[0].length === 0 || (accept && !accept(match[0]))) continue;
    yield { start: match.index, end: match.index + match[0].length };
  }
}

function regexDetector(rule: string, kind: FindingKind, pattern: RegExp, accept?: (match: string) => boolean) {
  return { rule, kind, find: (text: string) => matches(text, pattern, accept) };
}

const isWord = (code: number) =>
  (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;
const isAlnum = (code: number) => isWord(code) && code !== 95;
const isLetter = (code: number) => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/**
 * E-mail addresses, scanned from each `@` outwards: the local part back to the previous `@` or a character that
 * cannot be in one, the domain forward to the next. Each character is looked at from at most two `@`s, so the
 * scan is linear; `a.a.a.…`, `@@@@` and `a@a.a.a.…` cost no more than any other text.
 */
function* emailSpans(text: string): Generator<Span> {
  const run = /[A-Za-z0-9._%+@-]+/g;
  for (const match of text.matchAll(run)) {
    const base = match.index;
    const chunk = match[0];
    let at = chunk.indexOf("@");
    let previousAt = -1;
    // Addresses sharing characters (`a@b.example@c.example`) are joined into one span: spans never overlap.
    let pending: Span | null = null;
    while (at !== -1) {
      const nextAt = chunk.indexOf("@", at + 1);
      let start = previousAt + 1;
      while (start < at && !isAlnum(chunk.charCodeAt(start)) && chunk[start] !== "_") start++;
      const end = domainEnd(chunk, at + 1, nextAt === -1 ? chunk.length : nextAt);
      if (start < at && end > 0) {
        if (pending && base + start < pending.end) pending.end = base + end;
        else {
          if (pending) yield pending;
          pending = { start: base + start, end: base + end };
        }
      }
      previousAt = at;
      at = nextAt;
    }
    if (pending) yield pending;
  }
}

/**
 * Where a domain starting at `from` ends (labels of letters, digits and `-` joined by dots, the last starting with
 * two letters), or 0 when there is none before `limit`.
 */
function domainEnd(chunk: string, from: number, limit: number): number {
  let end = 0;
  let labels = 0;
  let labelStart = from;
  for (let i = from; i <= limit; i++) {
    const code = i < limit ? chunk.charCodeAt(i) : 0;
    const inLabel = isAlnum(code) || code === 45;
    if (inLabel) continue;
    if (i === labelStart) break; // an empty label (`..`, `@.`) ends the domain
    labels++;
    if (labels >= 2 && isLetter(chunk.charCodeAt(labelStart)) && isLetter(chunk.charCodeAt(labelStart + 1))) end = i;
    if (code !== 46) break; // not a dot: the domain ends here
    labelStart = i + 1;
  }
  return end;
}

/**
 * Payment card numbers: runs of digits with single spaces or dashes between groups. Within a run every window of
 * whole groups holding 13 to 19 digits is Luhn-checked in constant time (prefix sums), so a run of a million digits
 * or of `1-1-1-` stays linear. A number glued to longer digit runs is still found when its groups stand apart.
 */
function* digitRuns(text: string): Generator<{ index: number; chunk: string }> {
  const isDigit = (code: number) => code >= 48 && code <= 57;
  let i = 0;
  while (i < text.length) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i++;
    for (;;) {
      const code = text.charCodeAt(i);
      if (isDigit(code)) i++;
      else if ((code === 32 || code === 45) && isDigit(text.charCodeAt(i + 1))) i += 2;
      else break;
    }
    // Fewer than 13 characters cannot hold a card number: skip without copying (digit-heavy text has many runs).
    if (i - start >= 13) yield { index: start, chunk: text.slice(start, i) };
  }
}

function* cardSpans(text: string): Generator<Span> {
  for (const match of digitRuns(text)) {
    const chunk = match.chunk;
    if (chunk.length < 13) continue;
    // Groups (between separators) as offsets into the chunk and into its digits alone.
    const groupCount = chunk.length - chunk.replace(/[ -]/g, "").length + 1;
    const groupStart = new Int32Array(groupCount);
    const groupEnd = new Int32Array(groupCount);
    const groupDigit = new Int32Array(groupCount + 1);
    // Prefix sums of digit values and of doubled digit values (Luhn's), split by the parity of the position.
    const digitCount = chunk.length - groupCount + 1;
    const plainEven = new Int32Array(digitCount + 1);
    const plainOdd = new Int32Array(digitCount + 1);
    const twiceEven = new Int32Array(digitCount + 1);
    const twiceOdd = new Int32Array(digitCount + 1);
    let group = 0;
    let digit = 0;
    for (let i = 0; i < chunk.length; i++) {
      const code = chunk.charCodeAt(i);
      if (code === 32 || code === 45) {
        groupEnd[group] = i;
        group++;
        groupStart[group] = i + 1;
        groupDigit[group] = digit;
        continue;
      }
      const value = code - 48;
      const twice = value > 4 ? value * 2 - 9 : value * 2;
      const odd = digit & 1;
      plainEven[digit + 1] = plainEven[digit]! + (odd ? 0 : value);
      plainOdd[digit + 1] = plainOdd[digit]! + (odd ? value : 0);
      twiceEven[digit + 1] = twiceEven[digit]! + (odd ? 0 : twice);
      twiceOdd[digit + 1] = twiceOdd[digit]! + (odd ? twice : 0);
      digit++;
    }
    groupEnd[group] = chunk.length;
    groupDigit[groupCount] = digit;
    const luhn = (from: number, to: number) => {
      // The last digit (to - 1) is not doubled; every second one before it is.
      const total =
        (to - 1) % 2 === 0
          ? plainEven[to]! - plainEven[from]! + twiceOdd[to]! - twiceOdd[from]!
          : plainOdd[to]! - plainOdd[from]! + twiceEven[to]! - twiceEven[from]!;
      return total % 10 === 0;
    };
    for (let first = 0; first < groupCount; first++) {
      let best = -1;
      for (let last = first; last < groupCount; last++) {
        const count = groupDigit[last + 1]! - groupDigit[first]!;
        if (count > 19) break;
        if (count >= 13 && luhn(groupDigit[first]!, groupDigit[last + 1]!)) best = last;
      }
      if (best >= 0) {
        yield { start: match.index + groupStart[first]!, end: match.index + groupEnd[best]! };
        first = best;
      }
    }
  }
}

/**
 * JSON Web Tokens: three dot-separated base64url segments, the first two starting `eyJ` (`{"`). Found from each
 * `eyJ`, expanded to its run of token characters once (a run already looked at is skipped).
 */
function* jwtSpans(text: string): Generator<Span> {
  const isToken = (code: number) => isWord(code) || code === 45 || code === 46;
  let searched = 0;
  for (let at = text.indexOf("eyJ"); at !== -1; at = text.indexOf("eyJ", Math.max(at + 3, searched))) {
    if (at < searched) continue;
    let runStart = at;
    while (runStart > 0 && isToken(text.charCodeAt(runStart - 1))) runStart--;
    let runEnd = at;
    while (runEnd < text.length && isToken(text.charCodeAt(runEnd))) runEnd++;
    searched = runEnd;
    const segments = text.slice(runStart, runEnd).split(".");
    let offset = runStart;
    const starts = segments.map((segment) => {
      const segmentStart = offset;
      offset += segment.length + 1;
      return segmentStart;
    });
    for (let i = 0; i + 2 < segments.length; i++) {
      const [a, b, c] = [segments[i]!, segments[i + 1]!, segments[i + 2]!];
      if (a.startsWith("eyJ") && a.length >= 11 && b.startsWith("eyJ") && b.length >= 11 && c.length >= 8) {
        yield { start: starts[i]!, end: starts[i + 2]! + c.length };
        i += 2;
      }
    }
  }
}

/**
 * PEM private-key blocks, BEGIN to the next END. A BEGIN with no END counts to the end of the text: a key cut
 * short is still a key. Markers are found with bounded patterns and paired in one pass.
 */
function* privateKeySpans(text: string): Generator<Span> {
  const begin = /-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----/g;
  const end = /-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY-----/g;
  let from = 0;
  for (;;) {
    begin.lastIndex = from;
    const opening = begin.exec(text);
    if (!opening) return;
    end.lastIndex = opening.index + opening[0].length;
    const closing = end.exec(text);
    const stop = closing ? closing.index + closing[0].length : text.length;
    yield { start: opening.index, end: stop };
    if (!closing) return;
    from = stop;
  }
}

function ssnAccept(match: string): boolean {
  const [area, group, serial] = match.split("-");
  return area !== "000" && area !== "666" && !area!.startsWith("9") && group !== "00" && serial !== "0000";
}

function ipv4Accept(match: string): boolean {
  return match.split(".").every((octet) => Number(octet) <= 255 && (octet === "0" || !octet.startsWith("0")));
}

function phoneAccept(match: string): boolean {
  const digits = match.replace(/\D/g, "");
  return digits.length >= 10 && digits.length <= 15;
}

/** Long runs of key-like characters that look random: mixed classes and high entropy (not words, not hex hashes). */
function highEntropyAccept(match: string): boolean {
  return /[a-z]/.test(match) && /[A-Z]/.test(match) && /\d/.test(match) && entropy(match) >= 4.2;
}

export const builtInDetectors: readonly Detector[] = [
  { rule: "private-key", kind: "private-key", find: privateKeySpans },
  // Each alternative starts with a literal prefix and ends in one greedy class run: an attempt fails at the prefix
  // or runs to the end of the run once, and a match is consumed whole.
  regexDetector(
    "api-key",
    "secret",
    /\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|sk_live_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{30,})\b/g,
  ),
  { rule: "jwt", kind: "secret", find: jwtSpans },
  { rule: "email", kind: "email", find: emailSpans },
  // Bounded: at most 30 characters after the country code and check digits, so an attempt costs at most ~30 steps.
  regexDetector("iban", "iban", /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g, ibanValid),
  { rule: "card", kind: "card", find: cardSpans },
  regexDetector("ssn", "ssn", /\b\d{3}-\d{2}-\d{4}\b/g, ssnAccept),
  regexDetector(
    "phone",
    "phone",
    /(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w.])/g,
    phoneAccept,
  ),
  regexDetector("ipv4", "ip", /\b(?:\d{1,3}\.){3}\d{1,3}\b/g, ipv4Accept),
  regexDetector(
    "ipv6",
    "ip",
    /(?<![\w:.])[A-Fa-f0-9]{0,4}(?::[A-Fa-f0-9]{0,4}){2,7}(?![\w:])/g,
    (match) => match.length > 2 && isIPv6(match),
  ),
  regexDetector("high-entropy", "high-entropy", /[A-Za-z0-9+/_=-]{24,}/g, highEntropyAccept),
];
