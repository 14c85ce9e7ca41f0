import { isIPv6 } from "node:net";

/**
 * Built-in detectors for data that must not leave the machine unasked: personal data (e-mail, phone, payment card,
 * IBAN, US SSN, IP address) and secrets (API keys and tokens, private-key blocks, high-entropy strings). Each
 * detector is a pattern plus an optional check (Luhn, mod-97, entropy) that turns look-alikes away.
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
  | (string & {});

export interface Finding {
  kind: FindingKind;
  /** Which rule fired: a built-in detector's name or the owner's pattern / keyword list name. */
  rule: string;
  start: number;
  end: number;
  value: string;
}

export interface Detector {
  rule: string;
  kind: FindingKind;
  pattern: RegExp;
  accept?: (match: string) => boolean;
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

/** Shannon entropy in bits per character. */
export function entropy(text: string): number {
  const counts = new Map<string, number>();
  for (const char of text) counts.set(char, (counts.get(char) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

function cardAccept(match: string): boolean {
  const digits = match.replace(/[ -]/g, "");
  return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
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
  const classes = [/[a-z]/, /[A-Z]/, /\d/].filter((pattern) => pattern.test(match)).length;
  return classes >= 3 && entropy(match) >= 4.2;
}

export const builtInDetectors: readonly Detector[] = [
  {
    rule: "private-key",
    kind: "private-key",
    pattern: /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----/g,
  },
  {
    rule: "api-key",
    kind: "secret",
    pattern:
      /\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|sk_live_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{30,})\b/g,
  },
  { rule: "jwt", kind: "secret", pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b/g },
  { rule: "email", kind: "email", pattern: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g },
  { rule: "iban", kind: "iban", pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g, accept: ibanValid },
  { rule: "card", kind: "card", pattern: /\b\d(?:[ -]?\d){12,18}\b/g, accept: cardAccept },
  { rule: "ssn", kind: "ssn", pattern: /\b\d{3}-\d{2}-\d{4}\b/g, accept: ssnAccept },
  {
    rule: "phone",
    kind: "phone",
    pattern: /(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w.])/g,
    accept: phoneAccept,
  },
  { rule: "ipv4", kind: "ip", pattern: /\b(?:\d{1,3}\.){3}\d{1,3}\b/g, accept: ipv4Accept },
  {
    rule: "ipv6",
    kind: "ip",
    pattern: /(?<![\w:.])[A-Fa-f0-9]{0,4}(?::[A-Fa-f0-9]{0,4}){2,7}(?![\w:])/g,
    accept: (match) => match.length > 2 && isIPv6(match),
  },
  { rule: "high-entropy", kind: "high-entropy", pattern: /[A-Za-z0-9+/_=-]{24,}/g, accept: highEntropyAccept },
];
