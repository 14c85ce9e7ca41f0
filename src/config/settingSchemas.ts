import { resolve } from "node:path";
import { z } from "zod";
import { parseKeepAlive } from "../core/duration.js";

/**
 * The schemas the settings table (settings.ts) is made of. Each takes what any source gives (text from the
 * environment or a flag, a YAML value, a library caller's value) and returns what Config holds, and accepts its own
 * output again.
 */

/** A number, from a number or from text ("8"). Booleans and other text are refused by `check`, with its bounds. */
export function numeric(check: z.ZodNumber): z.ZodType<number, number | string> {
  return z.preprocess(
    (value) => (typeof value === "string" && value.trim() !== "" ? Number(value.trim()) : value),
    check,
  ) as unknown as z.ZodType<number, number | string>;
}

export const integer = (min: number, max: number) =>
  numeric(
    z
      .number({ error: (issue) => (issue.code === "invalid_type" ? "must be a number" : undefined) })
      .int({ error: "must be a whole number" })
      .min(min)
      .max(max),
  );

/** One of `values`, any letter case; the message lists them. */
export function choice<const T extends readonly [string, ...string[]]>(values: T): z.ZodType<T[number], string> {
  return z.preprocess(
    (value) => (typeof value === "string" ? value.trim().toLowerCase() : value),
    z.enum(values, { error: `must be ${values.slice(0, -1).join(", ")} or ${values.at(-1)}` }),
  ) as unknown as z.ZodType<T[number], string>;
}

/** A list: comma-separated text (the environment, a flag) or a YAML list. */
export function list(item: z.ZodType<string>): z.ZodType<string[], string | readonly string[]> {
  return z.preprocess(
    (value) =>
      typeof value === "string"
        ? value
            .split(",")
            .map((part) => part.trim())
            .filter(Boolean)
        : value,
    z.array(item),
  ) as unknown as z.ZodType<string[], string | readonly string[]>;
}

/** Yes or no: a YAML boolean, or 1/true/yes/on and 0/false/no/off as text (anything else is an error, not "no"). */
export const yesNo = z.preprocess(
  (value) => {
    if (typeof value !== "string") return value;
    if (/^(1|true|yes|on)$/i.test(value.trim())) return true;
    if (/^(0|false|no|off)$/i.test(value.trim())) return false;
    return value;
  },
  z.boolean({ error: "must be 1 (or true, yes, on) or 0 (or false, no, off)" }),
) as unknown as z.ZodType<boolean, boolean | string>;

export const path = z
  .string()
  .min(1)
  .transform((value) => resolve(value));

const byteUnits: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "8GiB", "512MB", "1e9" or a number → bytes; NaN (rejected by the schema) when it is none of those. */
export function parseByteSize(value: number | string): number {
  if (typeof value === "number") return value;
  const match = /^\s*([\d.]+(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? byteUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return Number.NaN;
  return Math.round(Number(match[1]) * unit);
}

export const byteSize = z.preprocess(
  (value) => (typeof value === "string" || typeof value === "number" ? parseByteSize(value) : value),
  z.number({ error: "must be bytes, or a size like 8GiB or 512MB" }).int().min(0),
) as unknown as z.ZodType<number, number | string>;

/** Seconds or a duration ("5m", "1h30m"); negative keeps a model loaded → whole seconds, -1 for "forever". */
export const keepAlive = z.union([z.number(), z.string()]).transform((value, context) => {
  try {
    const ms = parseKeepAlive(value, "");
    return ms < 0 ? -1 : Math.round(ms / 1000);
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message.trim() });
    return z.NEVER;
  }
}) as unknown as z.ZodType<number, number | string>;

export const origin = z
  .string()
  .regex(
    /^(\*|[a-z][a-z0-9+.-]*:\/\/[^/\s]*)$/i,
    "each origin is scheme://host[:port] (no path), a prefix of one ending in *, or * for any",
  );
