import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, open, rm, stat } from "node:fs/promises";
import type { HubClient } from "./client.js";
import { RetryableFailure } from "./client.js";
import { HubError } from "./errors.js";
import type { HubFile } from "./tree.js";

/** Bytes so far of one file; `total` is the listing's size. */
export interface DownloadProgress {
  completed: number;
  total: number;
}

export interface DownloadTarget {
  repo: string;
  commit: string;
  file: HubFile & { sha256: string };
}

const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Downloads one file into `partialPath`, resuming what an earlier attempt (or process) left there with `Range`,
 * hashing while writing, and retrying cut connections, stalls, 429 and 5xx with backoff. On return the file is
 * complete, synced, and its sha256 equals the listing's; on a mismatch it is deleted and a HubError says so.
 * The caller decides where `partialPath` is (never somewhere a model is read from) and renames it into place.
 */
export async function downloadFile(
  client: HubClient,
  target: DownloadTarget,
  partialPath: string,
  onProgress: (progress: DownloadProgress) => void = () => undefined,
  signal?: AbortSignal,
): Promise<void> {
  const { file } = target;
  client.checkOnline(`download ${file.path} from hf.co/${target.repo}`);
  const url = client.resolveUrl(target.repo, target.commit, file.path);
  const handle = await open(partialPath, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    let { hash, offset } = await hashExisting(handle, file.size);
    if (offset > file.size) {
      await handle.truncate(0);
      ({ hash, offset } = { hash: createHash("sha256"), offset: 0 });
    }
    onProgress({ completed: offset, total: file.size });
    const state = { hash, offset };
    await client.withRetries(`download ${file.path} from hf.co/${target.repo}`, signal, () =>
      fetchRemainder(client, url, target, handle, state, onProgress, signal),
    );
    await handle.sync();
    const digest = state.hash.digest("hex");
    if (digest !== file.sha256) {
      await handle.close().catch(() => undefined);
      await rm(partialPath, { force: true });
      throw new HubError(
        `${file.path} from hf.co/${target.repo} has sha256 ${digest}, but the hub lists ${file.sha256}; the download was deleted and nothing was stored (try again; if it repeats, the mirror or a proxy is serving wrong bytes)`,
        "digest_mismatch",
        502,
      );
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Hashes what an earlier attempt left, so the digest covers the whole file when the rest arrives. */
async function hashExisting(handle: FileHandle, limit: number): Promise<{ hash: Hash; offset: number }> {
  const hash = createHash("sha256");
  const { size } = await handle.stat();
  if (size > limit) return { hash, offset: size };
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let offset = 0;
  while (offset < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK_BYTES, size - offset), offset);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    offset += bytesRead;
  }
  return { hash, offset };
}

/** One attempt: asks for the bytes from `state.offset` on and appends them; a cut or a stall is retryable. */
async function fetchRemainder(
  client: HubClient,
  url: URL,
  target: DownloadTarget,
  handle: FileHandle,
  state: { hash: Hash; offset: number },
  onProgress: (progress: DownloadProgress) => void,
  signal?: AbortSignal,
): Promise<void> {
  const { file } = target;
  if (state.offset === file.size) return;
  const attempt = new AbortController();
  const stalled = () => attempt.abort(new RetryableFailure(`no data for ${client.stallTimeoutMs / 1000} s (stalled)`));
  let timer = setTimeout(stalled, client.stallTimeoutMs);
  const onAbort = () => attempt.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const headers: Record<string, string> = state.offset > 0 ? { range: `bytes=${state.offset}-` } : {};
    let response: Response;
    try {
      response = await client.requestOnce(url, { what: `download ${file.path}`, headers, signal: attempt.signal });
    } catch (error) {
      throw attempt.signal.aborted && attempt.signal.reason instanceof RetryableFailure ? attempt.signal.reason : error;
    }
    if (response.status === 206) {
      checkContentRange(response.headers.get("content-range"), state.offset, file, target.repo);
    } else if (state.offset > 0) {
      // The server ignored Range and sends the whole file: start again from byte 0.
      await handle.truncate(0);
      state.hash = createHash("sha256");
      state.offset = 0;
    }
    const length = response.headers.get("content-length");
    if (length !== null && state.offset + Number(length) > file.size) {
      await response.body?.cancel();
      throw new HubError(
        `the hub offered ${Number(length) + state.offset} bytes of ${file.path}, but its listing says ${file.size}; refusing`,
        "hub_bad_response",
      );
    }
    if (!response.body) throw new RetryableFailure("the response had no body");
    const reader = response.body.getReader();
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (attempt.signal.reason instanceof RetryableFailure) throw attempt.signal.reason;
          if (signal?.aborted) throw signal.reason;
          throw new RetryableFailure(`the connection broke after ${state.offset} bytes (${(error as Error).message})`);
        }
        if (chunk.done) break;
        clearTimeout(timer);
        timer = setTimeout(stalled, client.stallTimeoutMs);
        const bytes = chunk.value;
        if (state.offset + bytes.length > file.size) {
          throw new HubError(
            `the hub sent more than the ${file.size} bytes its listing gives for ${file.path}; refusing`,
            "hub_bad_response",
          );
        }
        let written = 0;
        while (written < bytes.length) {
          written += (await handle.write(bytes, written, bytes.length - written, state.offset + written)).bytesWritten;
        }
        state.hash.update(bytes);
        state.offset += bytes.length;
        onProgress({ completed: state.offset, total: file.size });
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    if (state.offset < file.size) {
      throw new RetryableFailure(`the connection ended after ${state.offset} of ${file.size} bytes`);
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    attempt.abort();
  }
}

function checkContentRange(header: string | null, offset: number, file: HubFile, repo: string): void {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header ?? "");
  if (!match || Number(match[1]) !== offset || (match[3] !== "*" && Number(match[3]) !== file.size)) {
    throw new HubError(
      `the hub answered a request for ${file.path} (hf.co/${repo}) from byte ${offset} with the range ${JSON.stringify(header)}; refusing`,
      "hub_bad_response",
    );
  }
}

/** The size of a partial download, or 0. */
export async function partialSize(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.size ?? 0;
}
