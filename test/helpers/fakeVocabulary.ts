import type { Vocabulary } from "../../src/engine/runner/vocabulary.js";

/**
 * A made-up tokenizer for the token-loop stages: each token is a piece of text, or raw bytes (like llama.cpp's
 * byte-fallback tokens, which can end inside a UTF-8 character). Token 0 is end-of-generation and reads "</s>".
 */
export class FakeVocabulary implements Vocabulary {
  private readonly pieces: (string | number[])[] = ["</s>"];
  private readonly ids = new Map<string, number>();

  /** The id of a text piece (made on first use). */
  id(piece: string): number {
    let id = this.ids.get(piece);
    if (id === undefined) {
      id = this.pieces.length;
      this.pieces.push(piece);
      this.ids.set(piece, id);
    }
    return id;
  }

  /** Ids for text cut into the given pieces: tokens("Hel", "lo"). */
  tokens(...pieces: string[]): number[] {
    return pieces.map((piece) => this.id(piece));
  }

  /** One token per UTF-8 byte of `text` (byte fallback). */
  byteTokens(text: string): number[] {
    return [...Buffer.from(text, "utf8")].map((byte) => {
      this.pieces.push([byte]);
      return this.pieces.length - 1;
    });
  }

  detokenize(tokens: readonly number[], specialTokens: boolean): string {
    const parts = tokens.map((token) => {
      const piece = this.pieces[token];
      if (piece === undefined) throw new Error(`unknown token ${token}`);
      if (token === 0 && !specialTokens) return Buffer.alloc(0);
      return typeof piece === "string" ? Buffer.from(piece, "utf8") : Buffer.from(piece);
    });
    return Buffer.concat(parts).toString("utf8");
  }

  isEogToken(token: number): boolean {
    return token === 0;
  }
}
