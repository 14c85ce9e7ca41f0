import { StoreError } from "../core/errors.js";

/** A validated digest in canonical form: `sha256:` and 64 lowercase hex digits. */
export type Digest = `sha256:${string}`;

// Lowercase only: every digest we compute is lowercase, and one spelling per blob keeps paths unique.
const digestPattern = /^sha256[:-]([0-9a-f]{64})$/;

/**
 * Validates a digest and returns its canonical `sha256:<hex>` form; the file-name form `sha256-<hex>` is accepted.
 * Every digest goes through here before it becomes part of a path (the missing check behind CVE-2024-37032).
 * @example
 * parseDigest("sha256-" + "a".repeat(64)); // "sha256:aaaa…"
 */
export function parseDigest(input: string): Digest {
  const match = digestPattern.exec(input);
  if (!match) {
    const shown = JSON.stringify(input.length > 80 ? `${input.slice(0, 80)}…` : input);
    throw new StoreError(
      `invalid digest ${shown}: expected "sha256:" followed by 64 lowercase hex digits`,
      "invalid_digest",
    );
  }
  return `sha256:${match[1]}`;
}

export function isDigest(input: string): boolean {
  return digestPattern.test(input);
}

/** The 64 hex digits of a valid digest. */
export function digestHex(digest: string): string {
  return parseDigest(digest).slice("sha256:".length);
}

/** The blob's file name inside `blobs/`: `sha256-<hex>` (no ":" so it is a valid name on every file system). */
export function blobFileName(digest: string): string {
  return `sha256-${digestHex(digest)}`;
}
