import { rename, writeFile } from "node:fs/promises";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { StoreError } from "../core/errors.js";
import {
  type Digest,
  type HashProgress,
  isDigest,
  type Manifest,
  type ModelStore,
  parseDigest,
  profileSchema,
  readTextIfExists,
  sameModelName,
} from "../store/index.js";

export const LOCKFILE_NAME = "freehold.lock";

const digestSchema = z
  .string()
  .refine(isDigest, 'expected "sha256:" followed by 64 lowercase hex digits')
  .transform((value) => parseDigest(value));

const fileSchema = z.object({
  path: z.string().min(1),
  digest: digestSchema,
  size: z.number().int().nonnegative(),
});

const sourceSchema = z.union([
  z.object({ hub: z.string().min(3), revision: z.string().min(1), commit: z.string().regex(/^[0-9a-f]{40}$/) }),
  z.object({ local: z.string().min(1), link: z.boolean().optional() }),
]);

const entrySchema = z.object({
  name: z.string().min(1),
  /** The first file's digest: the model's identity, as `freehold list` shows it. */
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  files: z.array(fileSchema).min(1),
  /** The multimodal projector stored with the model (pulled beside it, or imported with --projector). */
  projector: fileSchema.optional(),
  source: sourceSchema,
  /** A profile over `base` (freehold create): recreated as it is here. */
  base: z.string().optional(),
  profile: profileSchema.optional(),
  license: z.string().nullable(),
  locked: z.string(),
});

const lockfileSchema = z.object({
  lockfileVersion: z.literal(1),
  models: z.array(entrySchema),
});

export type Lockfile = z.infer<typeof lockfileSchema>;
export type LockEntry = Lockfile["models"][number];

const header = [
  "# freehold.lock: the exact models this project uses, byte for byte. Written by `freehold lock`.",
  "# `freehold pull --locked` installs exactly these; `freehold verify` re-hashes the store against them.",
  "",
].join("\n");

export function serializeLockfile(lockfile: Lockfile): string {
  const sorted = { ...lockfile, models: [...lockfile.models].sort((a, b) => a.name.localeCompare(b.name)) };
  return `${header}${stringifyYaml(sorted, { lineWidth: 0 })}`;
}

/** Parses lockfile text; a bad file is an error naming the path and the first wrong field. */
export function parseLockfile(text: string, path: string): Lockfile {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new StoreError(`${path} is not valid YAML (${(error as Error).message.split("\n")[0]})`, "invalid_lockfile");
  }
  const parsed = lockfileSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StoreError(
      `${path} is invalid at ${issue.path.join(".") || "top level"}: ${issue.message}`,
      "invalid_lockfile",
    );
  }
  return parsed.data;
}

/** Reads a lockfile; null when there is none at `path`. */
export async function readLockfile(path: string): Promise<Lockfile | null> {
  const text = await readTextIfExists(path);
  return text === null ? null : parseLockfile(text, path);
}

export async function writeLockfile(path: string, lockfile: Lockfile): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, serializeLockfile(lockfile));
  await rename(temporary, path);
}

/** Follows profiles down to the manifest that says where the bytes came from. */
async function originOf(store: ModelStore, manifest: Manifest, seen = new Set<string>()): Promise<Manifest> {
  if (manifest.source.kind !== "profile") return manifest;
  if (seen.has(manifest.name)) throw new StoreError(`the profile ${manifest.name} is based on itself`, "profile_cycle");
  seen.add(manifest.name);
  const base = await store.show(manifest.source.base).catch(() => {
    throw new StoreError(
      `cannot lock ${manifest.name}: its base model ${manifest.source.kind === "profile" ? manifest.source.base : ""} is no longer in the store, so where its bytes come from is unknown`,
      "base_missing",
    );
  });
  const baseDigests = base.manifest.files.map((file) => file.digest).join();
  if (baseDigests !== manifest.files.map((file) => file.digest).join()) {
    throw new StoreError(
      `cannot lock ${manifest.name}: its base ${base.name} now names other bytes; create the profile again`,
      "base_changed",
    );
  }
  return originOf(store, base.manifest, seen);
}

/** The lock entry for one installed model. */
export async function lockEntry(store: ModelStore, name: string, now = new Date()): Promise<LockEntry> {
  const { manifest } = await store.show(name);
  const origin = await originOf(store, manifest);
  const source: LockEntry["source"] =
    origin.source.kind === "hub"
      ? { hub: origin.source.repo, revision: origin.source.revision, commit: origin.source.commit }
      : {
          local: origin.source.kind === "import" ? origin.source.path : "",
          ...(origin.files.some((file) => file.link) ? { link: true } : {}),
        };
  return {
    name: manifest.name,
    digest: manifest.files[0]!.digest,
    size: manifest.files.reduce((total, file) => total + file.size, 0),
    files: manifest.files.map((file) => ({ path: file.filename, digest: file.digest, size: file.size })),
    ...(manifest.projector
      ? {
          projector: {
            path: manifest.projector.filename,
            digest: manifest.projector.digest,
            size: manifest.projector.size,
          },
        }
      : {}),
    source,
    ...(manifest.source.kind === "profile" ? { base: manifest.source.base } : {}),
    ...(manifest.profile ? { profile: manifest.profile } : {}),
    license: manifest.profile?.license ?? manifest.summary.license,
    locked: now.toISOString(),
  };
}

/**
 * Locks models: with names, adds or updates those entries in the existing lockfile; without, locks every model in
 * the store (replacing the file's list). Entries whose bytes did not change keep their date, so the file diffs cleanly.
 */
export async function lockModels(store: ModelStore, path: string, names: string[]): Promise<Lockfile> {
  const existing = (await readLockfile(path)) ?? { lockfileVersion: 1 as const, models: [] };
  const wanted = names.length > 0 ? names : (await store.list()).map((entry) => entry.name);
  const entries = new Map<string, LockEntry>();
  if (names.length > 0) for (const entry of existing.models) entries.set(entry.name.toLowerCase(), entry);
  for (const name of wanted) {
    const entry = await lockEntry(store, name);
    const previous = existing.models.find((old) => sameModelName(old.name, entry.name));
    const unchanged =
      previous && JSON.stringify({ ...previous, locked: "" }) === JSON.stringify({ ...entry, locked: "" });
    entries.set(entry.name.toLowerCase(), unchanged ? previous : entry);
  }
  const lockfile: Lockfile = { lockfileVersion: 1, models: [...entries.values()] };
  await writeLockfile(path, lockfile);
  return lockfile;
}

/** One difference between the store and what it should be. */
export interface VerifyProblem {
  model: string;
  message: string;
}

export interface VerifyReport {
  checked: string[];
  problems: VerifyProblem[];
}

/**
 * Re-hashes every file of every model in the store against its manifest, and every lockfile entry against the
 * lockfile (installed, same digests, same bytes). A problem names the model and the file.
 */
export async function verifyStore(
  store: ModelStore,
  lockfile: Lockfile | null,
  onProgress?: HashProgress,
): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const checked: string[] = [];
  const hashed = new Map<string, Digest | null>();
  const models = await store.list();
  // One count over every model, so a progress bar runs once from 0 to the store's size.
  const sizes = new Map<string, number>();
  for (const { name } of models) {
    const details = await store.show(name).catch(() => null);
    const projector = details?.manifest.projector?.size ?? 0;
    sizes.set(name, (details?.manifest.files.reduce((total, file) => total + file.size, 0) ?? 0) + projector);
  }
  const totalBytes = [...sizes.values()].reduce((total, size) => total + size, 0);
  let before = 0;
  for (const { name } of models) {
    checked.push(name);
    const progress = onProgress
      ? {
          onProgress: ({ doneBytes }: { doneBytes: number }) =>
            onProgress({ doneBytes: before + doneBytes, totalBytes }),
        }
      : {};
    const files = await store.verify(name, progress);
    before += sizes.get(name) ?? 0;
    for (const file of files) {
      hashed.set(file.path, file.actual);
      if (file.actual === null) problems.push({ model: name, message: `${file.filename}: ${file.path} is missing` });
      else if (file.actual !== file.expected) {
        problems.push({
          model: name,
          message: `${file.filename}: ${file.path} hashes to ${file.actual}, but the manifest says ${file.expected}`,
        });
      }
    }
  }
  for (const entry of lockfile?.models ?? []) {
    const details = await store.show(entry.name).catch(() => null);
    if (!details) {
      problems.push({
        model: entry.name,
        message: "is in freehold.lock but not installed; run `freehold pull --locked`",
      });
      continue;
    }
    const installed = details.manifest.files.map((file) => file.digest);
    const pinned = entry.files.map((file) => file.digest);
    if (installed.join() !== pinned.join()) {
      problems.push({
        model: entry.name,
        message: `is installed as ${installed.join(", ")}, but freehold.lock pins ${pinned.join(", ")}`,
      });
      continue;
    }
    if (JSON.stringify(details.manifest.profile ?? null) !== JSON.stringify(entry.profile ?? null)) {
      problems.push({ model: entry.name, message: "has a different profile than freehold.lock records" });
    }
    for (const [i, path] of details.blobPaths.entries()) {
      const actual = hashed.get(path);
      if (actual !== undefined && actual !== null && actual !== pinned[i]) {
        problems.push({
          model: entry.name,
          message: `${entry.files[i]!.path} hashes to ${actual}, but freehold.lock pins ${pinned[i]}`,
        });
      }
    }
  }
  return { checked, problems };
}
