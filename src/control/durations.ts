import { InvalidRequestError } from "../core/errors.js";

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "2w" → milliseconds, or a 400 naming `param`. */
export function parseDuration(text: string, param: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/.exec(text);
  if (!match)
    throw new InvalidRequestError(
      `${param} must be a duration like 30d, 12h, 90m or 2w, not ${JSON.stringify(text.slice(0, 40))}`,
      param,
    );
  return Number(match[1]) * units[match[2]!]!;
}

/** A duration back from now ("7d") or a date ("2025-06-01") → epoch milliseconds. */
export function parseSince(text: string, now = Date.now(), param = "since"): number {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const time = Date.parse(text);
    if (Number.isNaN(time))
      throw new InvalidRequestError(`${param} is not a valid date: ${JSON.stringify(text.slice(0, 40))}`, param);
    return time;
  }
  return now - parseDuration(text, param);
}

/** A duration from now ("30d") or a date → the ISO time a key expires. */
export function parseExpiry(text: string, now = Date.now(), param = "expires"): string {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const time = Date.parse(text);
    if (Number.isNaN(time))
      throw new InvalidRequestError(`${param} is not a valid date: ${JSON.stringify(text.slice(0, 40))}`, param);
    return new Date(time).toISOString();
  }
  return new Date(now + parseDuration(text, param)).toISOString();
}
