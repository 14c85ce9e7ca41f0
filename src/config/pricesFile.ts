import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigFileError } from "./fileConfig.js";

/**
 * `$FREEHOLD_HOME/prices.yaml`: prices that override or extend the shipped table (src/control/prices.ts), and how
 * local requests are costed. Read here, with every other file and variable; the control plane turns it into a table.
 */

const priceSchema = z.strictObject({
  input_per_million: z.number().min(0),
  output_per_million: z.number().min(0),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be YYYY-MM-DD"),
  source: z.string().min(1),
});

const pricesFileSchema = z.strictObject({
  models: z.record(z.string().min(1), priceSchema).optional(),
  local: z
    .strictObject({
      equivalent_model: z.string().min(1).optional(),
      watts: z.number().min(0).max(100_000).optional(),
      usd_per_kwh: z.number().min(0).max(100).optional(),
    })
    .optional(),
});

export type PricesFile = z.infer<typeof pricesFileSchema>;

/** The data directory's prices.yaml, or null when there is none; an error names the file and the key. */
export function readPricesFile(home: string): PricesFile | null {
  const path = join(home, "prices.yaml");
  if (!existsSync(path)) return null;
  const parsed = pricesFileSchema.safeParse(parse(readFileSync(path, "utf8")) ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join(".") || "file";
    // An unknown key is most often a misspelt one: say which, and what the section takes.
    const message =
      issue.code === "unrecognized_keys"
        ? `has an unknown key ${issue.keys.join(", ")} (it takes ${Object.keys(sectionShape(issue.path)).join(", ")})`
        : issue.message;
    throw new ConfigFileError(`${path}: ${where} ${message}`);
  }
  return parsed.data;
}

function sectionShape(path: readonly PropertyKey[]): object {
  if (path.length === 0) return pricesFileSchema.shape;
  if (path[0] === "local") return pricesFileSchema.shape.local.unwrap().shape;
  return priceSchema.shape;
}
