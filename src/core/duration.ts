import { InvalidRequestError } from "./errors.js";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

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
  if (text.startsWith("-")) return -1;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new InvalidRequestError(
      `${param} must be seconds or a duration like "10m", "1h30m" or "-1", not ${JSON.stringify(value)}`,
      param,
    );
  }
  return Math.round(parts.reduce((total, part) => total + Number(part[1]) * units[part[2]!]!, 0));
}
