import { isAbsolute, relative, resolve, sep } from "node:path";
import { StoreError } from "../core/errors.js";
import { blobFileName } from "./digest.js";
import type { ModelName } from "./names.js";

/** The placeholder directory for a name without a host or namespace; never a valid name part (see names.ts). */
export const NO_PART = "_";

/**
 * Where everything lives under the store's home. Every path it hands out is checked to stay inside home, so a name
 * or digest that slipped past validation still cannot write elsewhere.
 *
 * ```
 * home/blobs/sha256-<hex>                                      content-addressed model files
 * home/manifests/<host|_>/<namespace|_>/<model>/<tag>.json     one per name, all parts lower-cased
 * home/tmp/<pid>-<random>.<kind>                               in-flight writes, cleaned when their process is gone
 * home/store.lock                                              held by the process mutating the store
 * ```
 */
export class StoreLayout {
  readonly home: string;
  readonly blobs: string;
  readonly manifests: string;
  readonly tmp: string;
  readonly lock: string;

  constructor(home: string) {
    this.home = resolve(home);
    this.blobs = this.inside("blobs");
    this.manifests = this.inside("manifests");
    this.tmp = this.inside("tmp");
    this.lock = this.inside("store.lock");
  }

  /** Joins segments under home and refuses any result outside it. */
  inside(...segments: string[]): string {
    const path = resolve(this.home, ...segments);
    const rel = relative(this.home, path);
    if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new StoreError(`refusing to use ${JSON.stringify(path)}: it is not inside the store at ${this.home}`);
    }
    return path;
  }

  blobPath(digest: string): string {
    return this.inside("blobs", blobFileName(digest));
  }

  /** The manifest's directory parts (lower-cased, so the mapping is injective on case-insensitive file systems). */
  manifestSegments(name: ModelName): [string, string, string, string] {
    const lower = (part: string | null) => (part === null ? NO_PART : part.toLowerCase());
    return [lower(name.host), lower(name.namespace), lower(name.model), `${name.tag.toLowerCase()}.json`];
  }

  manifestPath(name: ModelName): string {
    return this.inside("manifests", ...this.manifestSegments(name));
  }
}
