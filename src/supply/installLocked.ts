import { StoreError } from "../core/errors.js";
import type { ModelStore } from "../store/index.js";
import type { LockEntry, Lockfile } from "./lockfile.js";
import type { ModelPuller, PullProgress } from "./pull.js";

export interface LockedInstall {
  name: string;
  action: "up to date" | "installed";
  /** Bytes downloaded for it now. */
  downloaded: number;
}

/** True when the name is installed with exactly the entry's files and profile, and its files are there. */
async function upToDate(store: ModelStore, entry: LockEntry): Promise<boolean> {
  const details = await store.show(entry.name).catch(() => null);
  if (!details) return false;
  if (details.manifest.files.map((file) => file.digest).join() !== entry.files.map((file) => file.digest).join()) {
    return false;
  }
  if (JSON.stringify(details.manifest.profile ?? null) !== JSON.stringify(entry.profile ?? null)) return false;
  if (details.manifest.projector?.digest !== entry.projector?.digest) return false;
  return store.resolve(entry.name).then(
    () => true,
    () => false,
  );
}

/**
 * `freehold pull --locked`: makes the store hold exactly what the lockfile says. Hub models are fetched at their
 * pinned commit and must hash to the pinned digests; local ones are imported again from their recorded path and
 * must hash the same. Anything else fails loudly and names the model.
 */
export async function installLocked(
  store: ModelStore,
  puller: ModelPuller,
  lockfile: Lockfile,
  options: { onModel?: (entry: LockEntry) => void; onProgress?: (progress: PullProgress) => void } = {},
): Promise<LockedInstall[]> {
  const results: LockedInstall[] = [];
  for (const entry of lockfile.models) {
    options.onModel?.(entry);
    if (await upToDate(store, entry)) {
      results.push({ name: entry.name, action: "up to date", downloaded: 0 });
      continue;
    }
    if ("hub" in entry.source) {
      const pulled = await puller.pullPinned(
        entry.name,
        {
          repo: entry.source.hub,
          revision: entry.source.revision,
          commit: entry.source.commit,
          files: entry.files,
          projector: entry.projector,
        },
        {
          ...(entry.profile ? { profile: entry.profile } : {}),
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        },
      );
      results.push({ name: entry.name, action: "installed", downloaded: pulled.downloaded });
      continue;
    }
    const { local, link } = entry.source;
    if (entry.projector) {
      // The manifest keeps the projector's file name and digest, not where it was imported from.
      throw new StoreError(
        `${entry.name} was imported from ${local} with a projector (${entry.projector.path}); import it again with \`freehold import ${local} --name ${entry.name} --projector MMPROJ.gguf\``,
        "locked_local_projector",
      );
    }
    if (entry.profile) {
      throw new StoreError(
        `${entry.name} is a profile over a local file (${local}); import its base and run \`freehold create\` again`,
        "locked_local_profile",
      );
    }
    const imported = await store.import(local, entry.name, { reference: link === true }).catch((error: unknown) => {
      throw new StoreError(
        `${entry.name} was imported from ${local}, which cannot be imported again (${(error as Error).message}); find the file or remove the entry`,
        "locked_source_missing",
      );
    });
    const got = imported.files.map((file) => file.digest);
    if (got.join() !== entry.files.map((file) => file.digest).join()) {
      await store.remove(entry.name);
      throw new StoreError(
        `${local} now hashes to ${got.join(", ")}, but freehold.lock pins ${entry.name} to ${entry.files.map((file) => file.digest).join(", ")}; it was not installed`,
        "locked_source_changed",
        409,
      );
    }
    results.push({ name: entry.name, action: "installed", downloaded: 0 });
  }
  return results;
}
