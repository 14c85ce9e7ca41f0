import assert from "node:assert/strict";
import { test } from "node:test";
import { checkDraftVocabulary, MAX_VOCABULARY_SIZE_DIFFERENCE, type VocabularyFacts } from "./draftVocabulary.js";

const tokens = (count: number, prefix = "t") =>
  Array.from({ length: count }, (_, id) => (id < 3 ? ["<unk>", "<s>", "</s>"][id]! : `${prefix}${id}`));
const base: VocabularyFacts = { type: "llama", tokens: tokens(1000), bos: 1, eos: 2 };
const names = { target: "big", draft: "small" };

const refusal = (draft: VocabularyFacts, pattern: RegExp) =>
  assert.throws(
    () => checkDraftVocabulary(base, draft, names),
    (error: Error & { code?: string; status?: number }) =>
      error.code === "draft_vocabulary_mismatch" &&
      error.status === 500 &&
      /the draft model small cannot draft for big/.test(error.message) &&
      pattern.test(error.message),
  );

test("the same vocabulary, or one a few tokens longer (llama.cpp's 128), drafts", () => {
  checkDraftVocabulary(base, { ...base }, names);
  checkDraftVocabulary(base, { ...base, tokens: tokens(1000 + MAX_VOCABULARY_SIZE_DIFFERENCE) }, names);
  checkDraftVocabulary(base, { ...base, tokens: tokens(1000 - MAX_VOCABULARY_SIZE_DIFFERENCE) }, names);
  // Ids below 5 are not compared (llama.cpp's rule: control tokens may be spelled differently).
  checkDraftVocabulary(base, { ...base, tokens: ["<pad>", ...base.tokens.slice(1)] }, names);
});

test("every kind of difference is refused, naming both models and the first difference", () => {
  refusal({ ...base, type: "gpt2" }, /tokenizer llama vs gpt2/);
  refusal({ ...base, tokens: tokens(1000 + MAX_VOCABULARY_SIZE_DIFFERENCE + 1) }, /1000 vs 1129 tokens/);
  refusal({ ...base, tokens: tokens(512) }, /1000 vs 512 tokens/);
  refusal({ ...base, bos: 0 }, /BOS token 1 vs 0/);
  refusal({ ...base, eos: null }, /EOS token 2 vs null/);
  const swapped = [...base.tokens];
  swapped[700] = "other";
  refusal({ ...base, tokens: swapped }, /token 700 is "t700" vs "other"/);
  refusal({ ...base, tokens: tokens(1000, "u") }, /token 5 is "t5" vs "u5"/);
});
