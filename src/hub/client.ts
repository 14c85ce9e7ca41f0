import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../core/errors.js";
import { HubError } from "./errors.js";
import { chooseProjector, type ProjectorChoice } from "./projector.js";
import { chooseDefault, groupModels, type HubModelFiles } from "./quantization.js";
import type { HubReference } from "./reference.js";
import { type HubFile, nextPageUrl, parseTreePage } from "./tree.js";

export interface HubClientOptions {
  /** The hub's base URL (HF_ENDPOINT), e.g. https://huggingface.co. */
  endpoint: string;
  /** Sent as a bearer token to the hub's own host only, never across a redirect to another host. */
  token?: string | undefined;
  /** Refuse every network access (FREEHOLD_OFFLINE / --offline). */
  offline?: boolean;
  /** Attempts per request before giving up on 429, 5xx, cut connections and stalls. Default 5. */
  attempts?: number;
  /** First pause between attempts (doubles each time, with jitter). Default 1000 ms. */
  backoffMs?: number;
  /** Longest pause between attempts, Retry-After included. Default 60 s. */
  maxBackoffMs?: number;
  /** A response that sends nothing for this long is abandoned and retried. Default 30 s. */
  stallTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** What a reference resolved to: the exact commit and the files of one model, in shard order. */
export interface HubSelection {
  repo: string;
  /** The revision as asked for (branch, tag or commit). */
  revision: string;
  /** The commit that revision pointed at: what gets pinned. */
  commit: string;
  quantization: string | null;
  files: HubFile[];
  /** Why this model was chosen, for people ("Q4_K_M, the default"). */
  reason: string;
  /** Every model the repository offers (for messages). */
  available: HubModelFiles[];
  /** A multimodal projector (mmproj-*.gguf) to fetch beside the model, when the repository has one. */
  projector: ProjectorChoice | null;
}

/** A request that may be retried: why it failed, and how long the server asked us to wait. */
export class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const commitPattern = /^[0-9a-f]{40}$/;

/**
 * The Hugging Face hub over its public HTTP API: `/api/models/{repo}/revision/{rev}` for the commit,
 * `/api/models/{repo}/tree/{commit}?recursive=true` for names, sizes and LFS sha256, and
 * `/{repo}/resolve/{commit}/{file}` (redirected to a CDN) for the bytes. Downloads are in download.ts.
 */
export class HubClient {
  readonly endpoint: URL;
  readonly attempts: number;
  readonly stallTimeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HubClientOptions) {
    this.endpoint = new URL(options.endpoint.endsWith("/") ? options.endpoint : `${options.endpoint}/`);
    if (this.endpoint.protocol !== "https:" && this.endpoint.protocol !== "http:") {
      throw new HubError(`HF_ENDPOINT ${options.endpoint} is not an http(s) URL`, "hub_bad_endpoint", 400);
    }
    this.attempts = Math.max(1, options.attempts ?? 5);
    this.stallTimeoutMs = options.stallTimeoutMs ?? 30_000;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Throws unless network access is allowed; `what` says what would have been fetched. */
  checkOnline(what: string): void {
    if (this.options.offline) {
      throw new HubError(
        `freehold is offline (FREEHOLD_OFFLINE=1 or --offline), so it will not contact ${this.endpoint.origin} to ${what}; unset it to go online, or add a local file with \`freehold import FILE --name NAME\``,
        "offline",
        400,
      );
    }
  }

  /** A URL under the hub's base, with every path segment escaped. */
  url(segments: string[], query = ""): URL {
    const path = segments.map((segment) => encodeURIComponent(segment)).join("/");
    return new URL(`${path}${query}`, this.endpoint);
  }

  resolveUrl(repo: string, commit: string, file: string): URL {
    return this.url([...repo.split("/"), "resolve", commit, ...file.split("/")]);
  }

  /** The commit a branch, tag or commit currently names. */
  async commitOf(repo: string, revision: string, signal?: AbortSignal): Promise<string> {
    const url = this.url(["api", "models", ...repo.split("/"), "revision", revision]);
    const json = (await this.getJson(url, `${repo}@${revision}`, signal)) as { sha?: unknown };
    if (typeof json?.sha !== "string" || !commitPattern.test(json.sha)) {
      throw new HubError(
        `the hub's answer for ${repo}@${revision} has no valid commit id (sha); is ${this.endpoint.origin} a Hugging Face hub?`,
        "hub_bad_response",
      );
    }
    return json.sha;
  }

  /** Every file in the repository at a commit (following the listing's pages). */
  async listFiles(repo: string, commit: string, signal?: AbortSignal): Promise<HubFile[]> {
    let url: string | null = this.url(
      ["api", "models", ...repo.split("/"), "tree", commit],
      "?recursive=true&expand=false",
    ).toString();
    const files: HubFile[] = [];
    for (let page = 0; url !== null; page++) {
      if (page >= 100) throw new HubError(`the hub's file listing for ${repo} has too many pages`, "hub_bad_response");
      const response = await this.request(new URL(url), { what: `list the files of ${repo}`, signal });
      const json = await readJson(response, repo);
      files.push(...parseTreePage(json, repo));
      url = nextPageUrl(response.headers.get("link"), url);
    }
    return files;
  }

  /** Resolves a reference to an exact commit and the files of one model (a whole split set). */
  async select(reference: HubReference, signal?: AbortSignal): Promise<HubSelection> {
    this.checkOnline(`pull hf.co/${reference.repo}`);
    const commit = await this.commitOf(reference.repo, reference.revision, signal);
    const listing = await this.listFiles(reference.repo, commit, signal);
    const available = groupModels(listing);
    const base = { repo: reference.repo, revision: reference.revision, commit, available };
    const quantizations = () =>
      available.length === 0
        ? "it has no .gguf model files"
        : `it has ${available.map((model) => model.quantization ?? model.files[0]!.path).join(", ")}`;
    if (reference.file !== null) {
      const wanted = reference.file.toLowerCase();
      const model = available.find((entry) => entry.files.some((file) => file.path.toLowerCase() === wanted));
      if (!model) {
        throw new HubError(
          `hf.co/${reference.repo} has no file ${reference.file} at ${reference.revision} (${quantizations()})`,
          "hub_file_not_found",
          404,
        );
      }
      return { ...base, ...model, reason: `the file ${reference.file}`, projector: chooseProjector(listing, model) };
    }
    if (reference.quantization !== null) {
      const wanted = reference.quantization.toUpperCase();
      const model = available.find((entry) => entry.quantization === wanted);
      if (!model) {
        throw new HubError(
          `hf.co/${reference.repo} has no ${wanted} model at ${reference.revision} (${quantizations()})`,
          "hub_quantization_not_found",
          404,
        );
      }
      return { ...base, ...model, reason: `${wanted}, as asked`, projector: chooseProjector(listing, model) };
    }
    const model = chooseDefault(available);
    if (!model) {
      throw new HubError(
        `hf.co/${reference.repo} has no GGUF model at ${reference.revision}; freehold runs .gguf files`,
        "hub_no_gguf",
        404,
      );
    }
    const reason =
      model.quantization === "Q4_K_M"
        ? "Q4_K_M, the default"
        : `${model.quantization ?? model.files[0]!.path}, the closest to Q4_K_M in this repository (it has no Q4_K_M)`;
    return { ...base, ...model, reason, projector: chooseProjector(listing, model) };
  }

  private async getJson(url: URL, what: string, signal?: AbortSignal): Promise<unknown> {
    return readJson(await this.request(url, { what: `look up ${what}`, signal }), what);
  }

  /**
   * One request with retries on 429, 5xx and network failures, redirects followed by hand (so the token never
   * reaches another host). Returns a 2xx response; anything else is a HubError saying what to do.
   */
  async request(
    url: URL,
    options: { what: string; headers?: Record<string, string>; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    return this.withRetries(options.what, options.signal, () => this.requestOnce(url, options));
  }

  /** One try of `request`: a RetryableFailure means the caller may try again. */
  async requestOnce(
    url: URL,
    options: { what: string; headers?: Record<string, string>; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const response = await this.fetchFollowing(url, options.headers ?? {}, options.signal);
    return this.checkStatus(response, options.what);
  }

  /** Runs `attempt` until it succeeds, retrying RetryableFailures with backoff. */
  async withRetries<T>(what: string, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
    let last = "";
    for (let tries = 0; tries < this.attempts; tries++) {
      signal?.throwIfAborted();
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof RetryableFailure)) throw error;
        last = error.message;
        if (tries + 1 >= this.attempts) break;
        const base = (this.options.backoffMs ?? 1000) * 2 ** tries;
        const wait = Math.min(
          error.retryAfterMs ?? base * (0.75 + Math.random() * 0.5),
          this.options.maxBackoffMs ?? 60_000,
        );
        await sleep(wait, undefined, signal ? { signal } : undefined);
      }
    }
    throw new HubError(
      `could not ${what} after ${this.attempts} attempts: ${last}; check the network and try again (downloads resume where they stopped)`,
      "hub_unavailable",
      502,
      true,
    );
  }

  private async fetchFollowing(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    let current = url;
    for (let hop = 0; hop <= 10; hop++) {
      const sameHost = current.origin === this.endpoint.origin;
      const sent: Record<string, string> = { "user-agent": "freehold", ...headers };
      if (sameHost && this.options.token) sent.authorization = `Bearer ${this.options.token}`;
      let response: Response;
      try {
        response = await this.fetchImpl(current, { headers: sent, redirect: "manual", ...(signal ? { signal } : {}) });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw new RetryableFailure(`${current.host} could not be reached (${causeMessage(error)})`);
      }
      if (!redirectStatuses.has(response.status)) return response;
      const location = response.headers.get("location");
      await response.body?.cancel();
      if (!location) throw new HubError(`${current.host} redirected without a Location`, "hub_bad_response");
      const next = new URL(location, current);
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new HubError(`${current.host} redirected to a ${next.protocol} URL; refusing`, "hub_bad_response");
      }
      current = next;
    }
    throw new HubError(`too many redirects from ${url.host}`, "hub_bad_response");
  }

  private checkStatus(response: Response, what: string): Response {
    const status = response.status;
    if (status >= 200 && status < 300) return response;
    void response.body?.cancel();
    if (status === 429 || status >= 500) {
      throw new RetryableFailure(`the hub answered ${status}`, retryAfterMs(response.headers.get("retry-after")));
    }
    if (status === 401 || status === 403) {
      throw new HubError(
        this.options.token
          ? `the hub refused the token in HF_TOKEN (${status}) when asked to ${what}; check that it is valid and that you accepted the repository's terms`
          : `the hub needs a token to ${what} (${status}): the repository is gated or private; set HF_TOKEN to a Hugging Face access token`,
        "hub_unauthorized",
        status === 401 ? 401 : 403,
      );
    }
    if (status === 404) {
      throw new HubError(
        `the hub has no such repository, revision or file (404) when asked to ${what}`,
        "hub_not_found",
        404,
      );
    }
    throw new HubError(`the hub answered ${status} when asked to ${what}`, "hub_error", 502);
  }
}

async function readJson(response: Response, what: string): Promise<unknown> {
  const text = await response.text();
  if (text.length > 64 * 1024 * 1024)
    throw new HubError(`the hub's answer for ${what} is too large`, "hub_bad_response");
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HubError(
      `the hub's answer for ${what} is not JSON; is HF_ENDPOINT a Hugging Face hub?`,
      "hub_bad_response",
    );
  }
}

function retryAfterMs(header: string | null): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function causeMessage(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  return cause ? errorMessage(cause) : errorMessage(error);
}
