import { parseDurationText } from "../core/duration.js";
import { InvalidRequestError } from "../core/errors.js";

/** "30d", "12h", "90m", "1h30m", "2w" → milliseconds (core/duration's syntax), or a 400 naming `param`. */
export function parseDuration(text: string, param: string): number {
  const ms = parseDurationText(text);
  if (ms === null || ms <= 0)
    throw new InvalidRequestError(
      `${param} must be a duration like 30d, 12h, 90m, 1h30m or 2w, not ${JSON.stringify(text.slice(0, 40))}`,
      param,
    );
  return ms;
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
