import type { SamplingOptions } from "../core/chat.js";

/** The sampling fields OpenAI-style bodies share (chat, completions, Responses), spelled as their bodies spell them. */
export interface SamplingFields {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  min_p?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  presence_penalty?: number | null | undefined;
  repeat_penalty?: number | null | undefined;
  repeat_last_n?: number | null | undefined;
  seed?: number | null | undefined;
  logit_bias?: Record<string, number> | null | undefined;
}

/** Drops nulls and absent fields so defaults stay the engine's. */
export function defined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], null | undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null && v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], null | undefined>;
  };
}

export function sampling(body: SamplingFields): SamplingOptions {
  return defined({
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    frequencyPenalty: body.frequency_penalty,
    presencePenalty: body.presence_penalty,
    repeatPenalty: body.repeat_penalty,
    repeatLastN: body.repeat_last_n,
    seed: body.seed,
    logitBias: body.logit_bias && Object.keys(body.logit_bias).length > 0 ? body.logit_bias : undefined,
  });
}
