import { z } from "zod";
import { HubError } from "./errors.js";
import { isSafeRepoPath } from "./reference.js";

/** A file in a repository as the hub lists it, validated: a safe relative path, a size, and its LFS sha256. */
export interface HubFile {
  path: string;
  size: number;
  /** 64 lowercase hex digits; null for files kept in git rather than LFS (the hub gives no sha256 for those). */
  sha256: string | null;
}

/** No single model file is larger than this; a listing that says so is wrong, not a reason to allocate. */
export const MAX_FILE_BYTES = 2 ** 42;

const sizeSchema = z.number().int().nonnegative().max(MAX_FILE_BYTES);

const entrySchema = z.object({
  type: z.string(),
  path: z.string(),
  size: sizeSchema.optional(),
  lfs: z
    .object({
      oid: z.string(),
      size: sizeSchema,
    })
    .optional(),
});

const listingSchema = z.array(entrySchema).max(100_000);

/**
 * Validates one page of `/api/models/{repo}/tree/{revision}`. Every path must be safe before it is used (it becomes
 * part of a URL and, later, a file name shown to people); every LFS oid must be a sha256; sizes must be sane.
 */
export function parseTreePage(json: unknown, repo: string): HubFile[] {
  const parsed = listingSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HubError(
      `the hub's file listing for ${repo} is malformed at ${issue.path.join(".") || "top level"}: ${issue.message}`,
      "hub_bad_response",
    );
  }
  const files: HubFile[] = [];
  for (const entry of parsed.data) {
    if (entry.type !== "file") continue;
    if (!isSafeRepoPath(entry.path)) {
      throw new HubError(
        `the hub listed a file named ${JSON.stringify(entry.path.slice(0, 200))} in ${repo}, which is not a safe relative path; refusing to pull from this listing`,
        "hub_unsafe_path",
      );
    }
    if (entry.lfs) {
      if (!/^[0-9a-f]{64}$/.test(entry.lfs.oid)) {
        throw new HubError(
          `the hub listed ${entry.path} in ${repo} with LFS id ${JSON.stringify(entry.lfs.oid.slice(0, 80))}, which is not a sha256`,
          "hub_bad_response",
        );
      }
      if (entry.size !== undefined && entry.size !== entry.lfs.size) {
        throw new HubError(
          `the hub listed ${entry.path} in ${repo} with two sizes (${entry.size} and ${entry.lfs.size})`,
          "hub_bad_response",
        );
      }
      files.push({ path: entry.path, size: entry.lfs.size, sha256: entry.lfs.oid });
    } else {
      files.push({ path: entry.path, size: entry.size ?? 0, sha256: null });
    }
  }
  return files;
}

/** The next page of a paginated listing, from the Link header (`<url>; rel="next"`). */
export function nextPageUrl(link: string | null, base: string): string | null {
  if (!link) return null;
  const match = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  return match ? new URL(match[1]!, base).toString() : null;
}
