import { basename } from "node:path";
import { FreeholdError } from "../core/errors.js";
import type { ModelProfile } from "../core/profile.js";
import {
  type DownloadProgress,
  downloadFile,
  type HubClient,
  HubError,
  type HubFile,
  isHubReference,
  parseHubReference,
  quantizationOf,
} from "../hub/index.js";
import {
  acquireLock,
  type Digest,
  type DownloadedFile,
  type ImportResult,
  type ModelStore,
  parseDigest,
} from "../store/index.js";

/** Ollama's pull progress: `pulling manifest`, per file `pulling <digest>` with bytes, then `success`. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

export interface PullOptions {
  /** The name to store it under; by default `hf.co/OWNER/REPO:QUANT` (or `:latest`). */
  name?: string;
  onProgress?: (progress: PullProgress) => void;
  signal?: AbortSignal;
  /** false: leave the repository's vision projector out (`pull --no-projector`); the model is text-only here. */
  projector?: boolean;
}

export interface PullResult extends ImportResult {
  repo: string;
  commit: string;
  quantization: string | null;
  /** Why these files were chosen ("Q4_K_M, the default"). */
  reason: string;
  /** Bytes that were downloaded now (0 when everything was in the store already). */
  downloaded: number;
  /** Why this projector was chosen, when the repository had one (it is in `projector`). */
  projectorReason?: string;
}

/** Exactly which files to fetch, as a lockfile pins them. */
export interface PinnedFiles {
  repo: string;
  revision: string;
  commit: string;
  files: { path: string; digest: Digest; size: number }[];
  /** The multimodal projector fetched beside the model (mmproj-*.gguf), pinned the same way. */
  projector?: { path: string; digest: Digest; size: number } | undefined;
}

interface SharedDownload {
  promise: Promise<string>;
  listeners: Set<(progress: DownloadProgress) => void>;
}

/**
 * Pulls models from the hub into the store. Each file is downloaded once however many pulls want it at the same time
 * (in this process: one shared download; across processes: a lock per file), resumed from what an interrupted pull
 * left in downloads/, verified against the listing's sha256 while it is written, and only then renamed into blobs/.
 */
export class ModelPuller {
  private readonly downloads = new Map<string, SharedDownload>();

  constructor(
    private readonly store: ModelStore,
    private readonly hub: HubClient,
  ) {}

  /** Pulls `hf.co/OWNER/REPO[:QUANT][@REVISION]` or `hf.co/OWNER/REPO/FILE.gguf[@REVISION]`. */
  async pull(reference: string, options: PullOptions = {}): Promise<PullResult> {
    if (!isHubReference(reference)) {
      throw new FreeholdError(
        `freehold pulls from Hugging Face only: use hf.co/OWNER/REPO[:QUANT] (the Ollama library's ${JSON.stringify(reference)} is not available); for a file on disk use \`freehold import FILE --name NAME\``,
        { code: "registry_not_supported", status: 501, type: "invalid_request_error", param: "model" },
      );
    }
    const parsed = parseHubReference(reference);
    const report = options.onProgress ?? (() => undefined);
    report({ status: "pulling manifest" });
    const selection = await this.hub.select(parsed, options.signal);
    const name = options.name ?? defaultName(parsed.repo, parsed.quantization, parsed.file, selection.quantization);
    const files = selection.files.map((file) => pinnedFile(file, selection.repo));
    const wanted = options.projector !== false ? selection.projector : undefined;
    const projector = wanted ? pinnedFile(wanted.file, selection.repo) : undefined;
    const result = await this.install(
      name,
      { repo: selection.repo, revision: selection.revision, commit: selection.commit, files, projector },
      report,
      options.signal,
    );
    return {
      ...result,
      quantization: selection.quantization,
      reason: selection.reason,
      ...(wanted ? { projectorReason: wanted.reason } : {}),
      ...(selection.projector && !wanted
        ? { projectorSkipped: `--no-projector: ${selection.projector.file.path} was not fetched (images need one)` }
        : {}),
    };
  }

  /**
   * Installs exactly the pinned files under `name`: what the store has already is used as it is, the rest is
   * fetched at the pinned commit. Fails before downloading when the hub now lists other bytes for a file.
   */
  async pullPinned(
    name: string,
    pinned: PinnedFiles,
    options: { profile?: ModelProfile; onProgress?: (progress: PullProgress) => void; signal?: AbortSignal } = {},
  ): Promise<PullResult> {
    const report = options.onProgress ?? (() => undefined);
    const missing = [];
    for (const file of filesOf(pinned)) if (!(await this.store.hasBlob(file.digest, file.size))) missing.push(file);
    if (missing.length > 0) {
      report({ status: "pulling manifest" });
      this.hub.checkOnline(`pull hf.co/${pinned.repo} at ${pinned.commit}`);
      const listing = await this.hub.listFiles(pinned.repo, pinned.commit, options.signal);
      for (const file of missing) {
        const listed = listing.find((entry) => entry.path === file.path);
        if (!listed) {
          throw new HubError(
            `hf.co/${pinned.repo} no longer has ${file.path} at commit ${pinned.commit}, which freehold.lock pins for ${name}`,
            "locked_source_changed",
            409,
          );
        }
        if (listed.sha256 !== file.digest.slice("sha256:".length) || listed.size !== file.size) {
          throw new HubError(
            `hf.co/${pinned.repo} now serves different bytes for ${file.path} at commit ${pinned.commit} (sha256:${listed.sha256 ?? "none"}, ${listed.size} bytes) than freehold.lock pins for ${name} (${file.digest}, ${file.size} bytes); nothing was installed`,
            "locked_source_changed",
            409,
          );
        }
      }
    }
    const result = await this.install(name, pinned, report, options.signal, options.profile);
    return { ...result, quantization: quantizationOf(pinned.files[0]!.path), reason: "as freehold.lock pins it" };
  }

  private async install(
    name: string,
    pinned: PinnedFiles,
    report: (progress: PullProgress) => void,
    signal: AbortSignal | undefined,
    profile?: ModelProfile,
  ): Promise<Omit<PullResult, "quantization" | "reason">> {
    const ready: DownloadedFile[] = [];
    let downloaded = 0;
    for (const file of filesOf(pinned)) {
      signal?.throwIfAborted();
      const status = `pulling ${file.digest.slice("sha256:".length, "sha256:".length + 12)}`;
      if (await this.store.hasBlob(file.digest, file.size)) {
        report({ status, digest: file.digest, total: file.size, completed: file.size });
        ready.push({
          path: this.store.layout.blobPath(file.digest),
          digest: file.digest,
          size: file.size,
          filename: file.path,
        });
        continue;
      }
      let last = -1;
      const path = await this.shared(pinned, file, (progress) => {
        if (progress.completed === last) return;
        last = progress.completed;
        report({ status, digest: file.digest, total: progress.total, completed: progress.completed });
      });
      downloaded += file.size;
      ready.push({ path, digest: file.digest, size: file.size, filename: file.path });
    }
    signal?.throwIfAborted();
    report({ status: "verifying sha256 digest" });
    report({ status: "writing manifest" });
    const source = {
      kind: "hub" as const,
      endpoint: this.hub.endpoint.toString(),
      repo: pinned.repo,
      revision: pinned.revision,
      commit: pinned.commit,
    };
    // The projector was fetched last, verified against its pinned digest like every file; the store checks it is one.
    const projector = pinned.projector ? ready.pop() : undefined;
    const result = await this.store.addDownloaded(name, ready, source, profile, projector);
    report({ status: "success" });
    return { ...result, repo: pinned.repo, commit: pinned.commit, downloaded };
  }

  /** One download per digest in this process; a lock file per digest across processes. Returns the verified file. */
  private async shared(
    pinned: PinnedFiles,
    file: PinnedFiles["files"][number],
    onProgress: (progress: DownloadProgress) => void,
  ): Promise<string> {
    let entry = this.downloads.get(file.digest);
    if (!entry) {
      const listeners = new Set<(progress: DownloadProgress) => void>();
      const promise = this.downloadLocked(pinned, file, (progress) => {
        for (const listener of listeners) listener(progress);
      }).finally(() => this.downloads.delete(file.digest));
      entry = { promise, listeners };
      this.downloads.set(file.digest, entry);
    }
    entry.listeners.add(onProgress);
    try {
      return await entry.promise;
    } finally {
      entry.listeners.delete(onProgress);
    }
  }

  private async downloadLocked(
    pinned: PinnedFiles,
    file: PinnedFiles["files"][number],
    onProgress: (progress: DownloadProgress) => void,
  ): Promise<string> {
    const partial = await this.store.downloadPath(file.digest);
    // Another process pulling the same file holds this until its copy is complete; then ours resumes at its end.
    const lock = await acquireLock(this.store.downloadLockPath(file.digest), {
      timeoutMs: 24 * 3600_000,
      retryMs: 200,
    });
    try {
      if (await this.store.hasBlob(file.digest, file.size)) return this.store.layout.blobPath(file.digest);
      const sha256 = file.digest.slice("sha256:".length);
      await downloadFile(
        this.hub,
        { repo: pinned.repo, commit: pinned.commit, file: { path: file.path, size: file.size, sha256 } },
        partial,
        onProgress,
      );
      return partial;
    } finally {
      await lock.release();
    }
  }
}

/** The model's files, then its projector: everything a pull fetches and verifies. */
function filesOf(pinned: PinnedFiles): PinnedFiles["files"] {
  return pinned.projector ? [...pinned.files, pinned.projector] : pinned.files;
}

function pinnedFile(file: HubFile, repo: string): PinnedFiles["files"][number] {
  if (file.sha256 === null) {
    throw new HubError(
      `hf.co/${repo} keeps ${file.path} outside LFS, so the hub gives no sha256 for it and it cannot be verified; refusing to pull it`,
      "hub_unverifiable",
    );
  }
  return { path: file.path, digest: parseDigest(`sha256:${file.sha256}`), size: file.size };
}

/** `hf.co/OWNER/REPO:TAG`: the quantization asked for, the file's own, or `latest`. */
export function defaultName(
  repo: string,
  quantization: string | null,
  file: string | null,
  chosen: string | null,
): string {
  let tag = quantization ?? "latest";
  if (file !== null) {
    const stem = basename(file)
      .replace(/\.gguf$/i, "")
      .replace(/-\d{5}-of-\d{5}$/, "");
    tag =
      chosen ??
      stem
        .replace(/[^A-Za-z0-9._-]/g, "_")
        .replace(/^[^A-Za-z0-9]+/, "")
        .slice(0, 80);
    if (tag === "") tag = "latest";
  }
  return `hf.co/${repo}:${tag}`;
}
