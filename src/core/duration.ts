import { InvalidRequestError } from "./errors.js";

const units: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * The one duration syntax of freehold (keep_alive, FREEHOLD_KEEP_ALIVE, `--since`, `--expires`): one or more
 * number-and-unit parts, largest first or not, as Go's time.ParseDuration (which Ollama uses) writes them, plus days
 * and weeks: "90s", "5m", "1h30m", "300ms", "7d", "2w". Returns milliseconds, or null when the text is not one.
 */
export function parseDurationText(text: string): number | null {
  const trimmed = text.trim();
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== trimmed) return null;
  return Math.round(parts.reduce((total, part) => total + Number(part[1]) * units[part[2]!]!, 0));
}

/**
 * Ollama's keep_alive: a number of seconds, or a duration like "10m", "1h30m", "300ms"; 0 unloads right after the
 * request, any negative value keeps the model loaded. Returns milliseconds (negative = forever).
 */
export function parseKeepAlive(value: number | string, param = "keep_alive"): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InvalidRequestError(`${param} must be a finite number of seconds`, param);
    return value < 0 ? -1 : Math.round(value * 1000);
  }
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return parseKeepAlive(Number(text), param);
  if (text.startsWith("-") && parseDurationText(text.slice(1)) !== null) return -1;
  const ms = parseDurationText(text);
  if (ms === null) {
    throw new InvalidRequestError(
      `${param} must be seconds or a duration like "10m", "1h30m" or "-1", not ${JSON.stringify(value)}`,
      param,
    );
  }
  return ms;
}
