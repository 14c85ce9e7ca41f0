import assert from "node:assert/strict";
import { test } from "node:test";
import { continuationDetokenizer, type Detokenizer } from "./detokenize.js";

/** A SentencePiece-like detokenizer: "▁" is a space, and a text's first piece loses its leading one (llama.cpp). */
function sentencePiece(pieces: string[]): Detokenizer {
  return {
    detokenize(tokens) {
      const text = tokens.map((token) => pieces[token]!.replaceAll("▁", " ")).join("");
      return text.startsWith(" ") ? text.slice(1) : text;
    },
    tokenize(text) {
      const id = pieces.indexOf(`▁${text}`);
      return id >= 0 ? [id] : [];
    },
  };
}

const pieces = ["<s>", "▁a", "▁happy", "▁dog", "s", "▁", "!"];
const [BOS, , HAPPY, DOG, S, SPACE, BANG] = pieces.map((_, index) => index);

test("the first generated token keeps its leading space, with no context or a context that reads as nothing", () => {
  const detokenize = continuationDetokenizer(sentencePiece(pieces));
  for (const before of [[], [BOS!], [BOS!, BOS!, BOS!, BOS!]]) {
    assert.equal(detokenize([HAPPY!], false, before), " happy");
    assert.equal(detokenize([SPACE!], false, before), " ");
    assert.equal(detokenize([BANG!], false, before), "!");
  }
});

test("later tokens read as the continuation of the ones before them", () => {
  const detokenize = continuationDetokenizer(sentencePiece(pieces));
  assert.equal(detokenize([S!], false, [DOG!]), "s");
  assert.equal(detokenize([DOG!, S!], false, [HAPPY!]), " dogs");
  assert.equal(detokenize([], false, [HAPPY!]), "");
  // Pieces are joined as the whole text would read: the tokens one by one give the text in one go.
  const generated = [HAPPY!, DOG!, S!, BANG!];
  const oneByOne = generated.map((token, index) => detokenize([token], false, generated.slice(0, index))).join("");
  assert.equal(oneByOne, " happy dogs!");
});
