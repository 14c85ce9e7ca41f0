import { readPricesFile } from "../config/pricesFile.js";

/** USD per million tokens, with where and when the figure was read. */
export interface ModelPrice {
  inputPerMillion: number;
  outputPerMillion: number;
  /** The day the price was read from its source (YYYY-MM-DD). */
  date: string;
  source: string;
}

const openai = "https://openai.com/api/pricing";
const anthropic = "https://www.anthropic.com/pricing#api";
const google = "https://ai.google.dev/gemini-api/docs/pricing";
const mistral = "https://mistral.ai/pricing#api-pricing";
const deepseek = "https://api-docs.deepseek.com/quick_start/pricing";

function price(inputPerMillion: number, outputPerMillion: number, source: string, date = "2025-06-01"): ModelPrice {
  return { inputPerMillion, outputPerMillion, date, source };
}

/**
 * Shipped list prices of widely used paid models (standard tier, no batch or cache discounts). Prices change: each
 * entry says when and where it was read; override or extend them in `$FREEHOLD_HOME/prices.yaml`.
 */
export const defaultPrices: Readonly<Record<string, ModelPrice>> = {
  "gpt-5": price(1.25, 10, openai, "2026-03-01"),
  "gpt-5-mini": price(0.25, 2, openai, "2026-03-01"),
  "gpt-5-nano": price(0.05, 0.4, openai, "2026-03-01"),
  "gpt-4o": price(2.5, 10, openai),
  "gpt-4o-mini": price(0.15, 0.6, openai),
  "gpt-4.1": price(2, 8, openai),
  "gpt-4.1-mini": price(0.4, 1.6, openai),
  "gpt-4.1-nano": price(0.1, 0.4, openai),
  o3: price(2, 8, openai),
  "o3-mini": price(1.1, 4.4, openai),
  "o4-mini": price(1.1, 4.4, openai),
  // Newer names first in meaning: "claude-opus-4-5-…" must not fall back to claude-opus-4's older, higher price.
  "claude-opus-4-5": price(5, 25, anthropic, "2026-03-21"),
  "claude-opus-4-1": price(15, 75, anthropic, "2026-03-21"),
  "claude-sonnet-4-5": price(3, 15, anthropic, "2026-03-21"),
  "claude-haiku-4-5": price(1, 5, anthropic, "2026-03-21"),
  "claude-opus-4": price(15, 75, anthropic),
  "claude-sonnet-4": price(3, 15, anthropic),
  "claude-3-7-sonnet": price(3, 15, anthropic),
  "claude-3-5-haiku": price(0.8, 4, anthropic),
  "gemini-2.5-pro": price(1.25, 10, google),
  "gemini-2.5-flash": price(0.3, 2.5, google),
  "gemini-2.0-flash": price(0.1, 0.4, google),
  "mistral-large": price(2, 6, mistral),
  "mistral-small": price(0.1, 0.3, mistral),
  "deepseek-chat": price(0.27, 1.1, deepseek),
  "deepseek-reasoner": price(0.55, 2.19, deepseek),
};

/** How local requests are costed: the paid model they stand in for, and the electricity they use. */
export interface LocalCosting {
  /** A key of the price table: what each local request would have cost there. */
  equivalentModel: string;
  /** Average power the machine draws while answering, in watts. */
  watts: number;
  /** Electricity price, USD per kWh. */
  usdPerKwh: number;
}

export const defaultLocalCosting: LocalCosting = { equivalentModel: "gpt-4o-mini", watts: 65, usdPerKwh: 0.15 };

/** Prices, to turn token counts into USD: real cost for remote models, "would have cost" and energy for local ones. */
export class PriceTable {
  constructor(
    readonly prices: Readonly<Record<string, ModelPrice>> = defaultPrices,
    readonly local: LocalCosting = defaultLocalCosting,
  ) {
    if (!this.lookup(local.equivalentModel))
      throw new Error(
        `prices: local.equivalent_model ${JSON.stringify(local.equivalentModel)} has no price; add it under models`,
      );
  }

  /**
   * The price entry for a model name: exact, without a provider prefix ("openai/gpt-4o"), or the longest entry that
   * a dated or suffixed name starts with ("gpt-4o-2024-08-06" → gpt-4o).
   */
  lookup(model: string): (ModelPrice & { model: string }) | undefined {
    const name = model.toLowerCase().split("/").pop() ?? "";
    let best: string | undefined;
    for (const key of Object.keys(this.prices)) {
      const lower = key.toLowerCase();
      if (name === lower) return { model: key, ...this.prices[key]! };
      if (name.startsWith(`${lower}-`) && (!best || key.length > best.length)) best = key;
    }
    return best ? { model: best, ...this.prices[best]! } : undefined;
  }

  /** USD for a request to `model`, or null when the table has no price for it. */
  cost(model: string, inputTokens: number, outputTokens: number): number | null {
    const entry = this.lookup(model);
    if (!entry) return null;
    return (inputTokens * entry.inputPerMillion + outputTokens * entry.outputPerMillion) / 1e6;
  }

  /** What a local request would have cost on the chosen paid equivalent. */
  equivalentCost(inputTokens: number, outputTokens: number): number {
    return this.cost(this.local.equivalentModel, inputTokens, outputTokens) ?? 0;
  }

  /**
   * Electricity for `durationMs` of answering at the configured power draw. Concurrent requests each count their
   * whole duration, so under load this is an upper bound.
   */
  energyCost(durationMs: number): number {
    return ((this.local.watts * durationMs) / 3_600_000 / 1000) * this.local.usdPerKwh;
  }
}

/** The shipped table, with `$FREEHOLD_HOME/prices.yaml` (if present) overriding and extending it. Never fetches. */
export function loadPriceTable(home: string): PriceTable {
  const file = readPricesFile(home);
  if (!file) return new PriceTable();
  const prices: Record<string, ModelPrice> = { ...defaultPrices };
  for (const [model, entry] of Object.entries(file.models ?? {}))
    prices[model] = price(entry.input_per_million, entry.output_per_million, entry.source, entry.date);
  const local = file.local ?? {};
  return new PriceTable(prices, {
    equivalentModel: local.equivalent_model ?? defaultLocalCosting.equivalentModel,
    watts: local.watts ?? defaultLocalCosting.watts,
    usdPerKwh: local.usd_per_kwh ?? defaultLocalCosting.usdPerKwh,
  });
}
