// A loopback server that behaves like the Hugging Face hub (revision, tree with LFS sha256, resolve redirecting to a
// CDN on another host with Range support) and misbehaves on purpose, per repository, as the tests ask.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeFile {
  path: string;
  bytes: Buffer;
  /** What the listing claims (defaults to the real sha256): a wrong one tests verification. */
  listedSha256?: string;
}

export interface FakeRepo {
  files: FakeFile[];
  /** Extra listing entries, e.g. an unsafe path. */
  extraEntries?: unknown[];
  /** Needs `Authorization: Bearer <token>` on the hub. */
  token?: string;
  /** The first CDN response for each file sends half the bytes, then cuts the connection. */
  cutOnce?: boolean;
  /** The first CDN response for each file sends half the bytes, then sends nothing more. */
  stallOnce?: boolean;
  /** The first tree request answers 429 (Retry-After: 0). */
  rateLimitOnce?: boolean;
  /** The CDN sends each file in pieces of `chunkBytes` with `delayMs` between them (a progress bar can be seen moving). */
  slow?: { chunkBytes: number; delayMs: number };
}

export interface FakeHub {
  /** The hub's base URL (HF_ENDPOINT). */
  url: string;
  commit: string;
  repos: Map<string, FakeRepo>;
  /** Every request either server saw: which host, path, Range, and whether it carried a token. */
  log: { server: "hub" | "cdn"; path: string; range: string | undefined; authorization: string | undefined }[];
  close(): Promise<void>;
}

export const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

export function fakeFile(path: string, source: string): FakeFile {
  return { path, bytes: readFileSync(source) };
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const state = new Map(Object.entries(repos));
  const log: FakeHub["log"] = [];
  const served = new Set<string>();
  const rateLimited = new Set<string>();
  let cdnUrl = "";

  const record = (server: "hub" | "cdn", request: IncomingMessage) =>
    log.push({
      server,
      path: decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname),
      range: request.headers.range,
      authorization: request.headers.authorization,
    });

  const hub = createServer((request: IncomingMessage, response: ServerResponse) => {
    record("hub", request);
    const url = new URL(request.url ?? "/", "http://x");
    const parts = url.pathname.split("/").map(decodeURIComponent);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(JSON.stringify(body));
    };
    const api = parts[1] === "api" && parts[2] === "models";
    const repoName = api ? `${parts[3]}/${parts[4]}` : `${parts[1]}/${parts[2]}`;
    const repo = state.get(repoName);
    if (!repo) return json(404, { error: "Repository not found" });
    if (repo.token && request.headers.authorization !== `Bearer ${repo.token}`) {
      return json(401, { error: "Access to this model is restricted" });
    }
    if (api && parts[5] === "revision") return json(200, { id: repoName, sha: commit });
    if (api && parts[5] === "tree") {
      if (repo.rateLimitOnce && !rateLimited.has(repoName)) {
        rateLimited.add(repoName);
        return json(429, { error: "slow down" }, { "retry-after": "0" });
      }
      const entries = repo.files.map((file) => ({
        type: "file",
        oid: "f".repeat(40),
        size: file.bytes.length,
        path: file.path,
        lfs: { oid: file.listedSha256 ?? sha256(file.bytes), size: file.bytes.length, pointerSize: 134 },
      }));
      return json(200, [
        { type: "directory", oid: "d".repeat(40), size: 0, path: "sub" },
        ...entries,
        ...(repo.extraEntries ?? []),
      ]);
    }
    if (parts[3] === "resolve") {
      const path = parts.slice(5).join("/");
      const file = repo.files.find((entry) => entry.path === path);
      if (!file) return json(404, { error: "Entry not found" });
      response.writeHead(302, {
        location: `${cdnUrl}/blobs/${encodeURIComponent(repoName)}/${encodeURIComponent(path)}?signed=1`,
      });
      return response.end();
    }
    json(404, { error: "unknown" });
  });

  const cdn = createServer((request, response) => {
    record("cdn", request);
    const parts = new URL(request.url ?? "/", "http://x").pathname.split("/").map(decodeURIComponent);
    const repo = state.get(parts[2] ?? "");
    const file = repo?.files.find((entry) => entry.path === parts[3]);
    if (!repo || !file) {
      response.writeHead(404);
      return response.end();
    }
    const key = `${parts[2]}/${file.path}`;
    const first = !served.has(key);
    served.add(key);
    const match = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
    const start = match ? Number(match[1]) : 0;
    const body = file.bytes.subarray(start);
    const headers: Record<string, string | number> = { "content-length": body.length, "accept-ranges": "bytes" };
    if (match) headers["content-range"] = `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}`;
    response.writeHead(match ? 206 : 200, headers);
    if (first && (repo.cutOnce || repo.stallOnce)) {
      response.write(body.subarray(0, Math.floor(body.length / 2)));
      if (repo.cutOnce) setTimeout(() => response.destroy(), 20);
      // stallOnce: keep the connection open and silent; the client's stall timeout must give up on it.
      return;
    }
    if (repo.slow) {
      const { chunkBytes, delayMs } = repo.slow;
      let offset = 0;
      const next = () => {
        if (response.destroyed) return;
        const piece = body.subarray(offset, offset + chunkBytes);
        offset += piece.length;
        if (offset >= body.length) return void response.end(piece);
        response.write(piece);
        setTimeout(next, delayMs);
      };
      return next();
    }
    response.end(body);
  });

  const hubPort = await listen(hub, "127.0.0.1");
  // Another host (127.0.0.2 is loopback too) for the CDN, as the real hub redirects to another host: the token must not follow.
  const cdnPort = await listen(cdn, "127.0.0.2");
  cdnUrl = `http://127.0.0.2:${cdnPort}`;
  return {
    url: `http://127.0.0.1:${hubPort}`,
    commit,
    repos: state,
    log,
    async close() {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}
