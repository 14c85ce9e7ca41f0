import { requestError } from "./errors.js";

/** What the check reads of a model's tokenizer (node-llama-cpp's LlamaModel gives each of these). */
export interface VocabularyFacts {
  /** The tokenizer's kind (GGUF `tokenizer.ggml.model`: llama, gpt2, …). */
  type: string | undefined;
  tokens: readonly string[];
  bos: number | null;
  eos: number | null;
}

/** llama.cpp's own bounds (common/speculative.cpp): sizes may differ a little, ids below 5 are not compared. */
export const MAX_VOCABULARY_SIZE_DIFFERENCE = 128;
const FIRST_COMPARED_TOKEN = 5;

/**
 * Refuses a draft model whose vocabulary is not the target's, as llama.cpp's speculative decoding does
 * (`common_speculative_are_compatible`): a draft proposes token ids, and the target reads them as its own, so a
 * different vocabulary drafts noise that is always rejected (or, with ids past the target's vocabulary, worse).
 * Same tokenizer kind, same BOS and EOS, sizes within 128 of each other, and the same text for every token id both
 * have (from id 5). The error names both models and the first difference found.
 */
export function checkDraftVocabulary(
  target: VocabularyFacts,
  draft: VocabularyFacts,
  names: { target: string; draft: string },
): void {
  const refuse = (difference: string) => {
    throw requestError(
      `the draft model ${names.draft} cannot draft for ${names.target}: their vocabularies differ (${difference}); ` +
        `a draft model must share the model's tokenizer (same family, e.g. a smaller model of the same release). ` +
        `Choose another draft, or re-create the profile without draft`,
      "draft_vocabulary_mismatch",
      // The profile's mistake, not the request's (as a draft missing from the store): the model cannot load.
      500,
    );
  };
  if (target.type !== draft.type) refuse(`tokenizer ${target.type ?? "unknown"} vs ${draft.type ?? "unknown"}`);
  const sizes = `${target.tokens.length} vs ${draft.tokens.length} tokens`;
  if (Math.abs(target.tokens.length - draft.tokens.length) > MAX_VOCABULARY_SIZE_DIFFERENCE)
    refuse(`${sizes}, more than ${MAX_VOCABULARY_SIZE_DIFFERENCE} apart`);
  if (target.bos !== draft.bos) refuse(`BOS token ${target.bos} vs ${draft.bos}`);
  if (target.eos !== draft.eos) refuse(`EOS token ${target.eos} vs ${draft.eos}`);
  const common = Math.min(target.tokens.length, draft.tokens.length);
  for (let id = FIRST_COMPARED_TOKEN; id < common; id++) {
    if (target.tokens[id] !== draft.tokens[id])
      refuse(`token ${id} is ${JSON.stringify(target.tokens[id])} vs ${JSON.stringify(draft.tokens[id])}`);
  }
}
