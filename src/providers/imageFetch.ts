import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { isIP } from "node:net";
import { InvalidRequestError } from "../core/errors.js";
import { IMAGE_HOST_ENTRY, type ImageFetcher, type ImageFetchRecord } from "../core/imageFetch.js";
import { addressProblem } from "./publicAddress.js";

/**
 * Fetches images clients name by URL, from the hosts the owner lists (FREEHOLD_IMAGE_FETCH; docs/security.md,
 * "Image URLs"). A fetch is egress and a server-side request a client steers, so every hop is checked:
 * http or https only, no userinfo, a listed host, port 80 or 443 unless the rule names the port, and every address
 * the name resolves to must be public (publicAddress.ts). The connection goes to the addresses that were checked
 * (the lookup hands them back; no second DNS query), so a name that re-resolves to 127.0.0.1 between the check and
 * the connect (DNS rebinding) reaches nothing. Redirects are followed up to MAX_REDIRECTS, each hop checked as the
 * first; bodies are capped while they stream, and the whole fetch has one deadline.
 */

/** Redirects followed per image; each hop is checked like the first. */
export const MAX_REDIRECTS = 3;

/** A host the owner allows: `images.example.com`, `*.example.com` (subdomains only) or `*` (any public host). */
export interface HostRule {
  host: string;
  /** The one port this rule allows; without it, 80 and 443. */
  port?: number;
}

/** FREEHOLD_IMAGE_FETCH's entries (`host`, `*.domain`, `*`, each optionally `:port`) → rules. */
export function parseHostRules(entries: readonly string[]): HostRule[] {
  return entries.map((entry) => {
    const match = IMAGE_HOST_ENTRY.exec(entry.trim());
    if (!match || (match[2] !== undefined && (Number(match[2]) < 1 || Number(match[2]) > 65535)))
      throw new Error(`image fetch host "${entry}": use host, *.domain or *, each optionally with :port`);
    return { host: match[1]!.toLowerCase(), ...(match[2] ? { port: Number(match[2]) } : {}) };
  });
}

function ruleMatches(rule: HostRule, host: string, port: number): boolean {
  const hostMatches =
    rule.host === "*" ||
    rule.host === host ||
    (rule.host.startsWith("*.") && host.endsWith(rule.host.slice(1)) && host.length > rule.host.length - 1);
  return hostMatches && (rule.port === undefined ? port === 80 || port === 443 : rule.port === port);
}

/** A resolved address, as node's lookup gives it. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface ImageFetcherOptions {
  hosts: readonly HostRule[];
  /** The whole fetch (every hop, headers and body) must finish within this. */
  timeoutMs: number;
  /** One line per fetch for the server log (host and size, never the URL). */
  onFetch?: (record: ImageFetchRecord) => void;
  /** DNS (default: the system resolver, every address). A test seam; the production path never sets it. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
  /**
   * Why an address may not be connected to (default: publicAddress.ts's `addressProblem`). A test seam for a test
   * server on loopback; the composition root never sets it, so production refuses every non-public address.
   */
  addressProblem?: (address: string) => string | undefined;
}

async function systemResolve(hostname: string): Promise<ResolvedAddress[]> {
  return (await dnsLookup(hostname, { all: true, verbatim: true })) as ResolvedAddress[];
}

/** Refused before connecting: the URL itself, or where it points. */
function notAllowed(field: string, why: string): InvalidRequestError {
  return new InvalidRequestError(
    `${field}: ${why}; send the image inline as a data: URI (data:image/png;base64,...)`,
    field,
    "image_url_not_allowed",
  );
}

/** Fetching failed: the status, size, time or connection, never the body. */
function failed(field: string, host: string, why: string): InvalidRequestError {
  return new InvalidRequestError(
    `${field}: the image at ${host} could not be fetched: ${why}; send the image inline as a data: URI instead`,
    field,
    "image_fetch_failed",
  );
}

interface Hop {
  url: URL;
  /** The checked addresses the connection may use. */
  addresses: ResolvedAddress[];
  port: number;
}

export class HttpImageFetcher implements ImageFetcher {
  readonly #options: ImageFetcherOptions;

  constructor(options: ImageFetcherOptions) {
    this.#options = options;
  }

  async fetchImage(url: string, field: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<Buffer> {
    const started = Date.now();
    const deadline = AbortSignal.timeout(this.#options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
    let host = "(invalid URL)";
    try {
      let current = url;
      for (let hop = 0; ; hop++) {
        // For the log line even when the URL is refused: the host only, never the path or query.
        host = URL.canParse(current) ? new URL(current).host || host : host;
        const checked = await this.#check(current, field, signal);
        const response = await this.#get(checked, field, signal);
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400 && response.headers.location) {
          response.destroy();
          if (hop >= MAX_REDIRECTS) throw failed(field, host, `more than ${MAX_REDIRECTS} redirects`);
          if (!URL.canParse(response.headers.location, checked.url.href))
            throw failed(field, host, "it redirected to an invalid URL");
          current = new URL(response.headers.location, checked.url).href;
          continue;
        }
        if (status < 200 || status >= 300) {
          response.destroy();
          throw failed(field, host, `it answered HTTP ${status}`);
        }
        const bytes = await readCapped(response, options.maxBytes, field, host, signal);
        this.#options.onFetch?.({ host, bytes: bytes.length, ms: Date.now() - started });
        return bytes;
      }
    } catch (error) {
      const refused =
        error instanceof InvalidRequestError
          ? error
          : signal.aborted
            ? failed(field, host, `no complete answer within ${this.#options.timeoutMs / 1000} s`)
            : failed(field, host, `the connection failed (${(error as NodeJS.ErrnoException).code ?? "error"})`);
      this.#options.onFetch?.({ host, bytes: 0, ms: Date.now() - started, error: refused.code });
      throw refused;
    }
  }

  /** The URL's scheme, userinfo, host and port, and every address its name resolves to. */
  async #check(text: string, field: string, signal: AbortSignal): Promise<Hop> {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw notAllowed(field, "is not a valid URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw notAllowed(field, `${url.protocol} URLs are not fetched (http and https only)`);
    if (url.username || url.password) throw notAllowed(field, "URLs with a user name or password are not fetched");
    const hostname = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
    if (!this.#options.hosts.some((rule) => ruleMatches(rule, hostname, port)))
      throw notAllowed(
        field,
        `${url.host} is not a host this server fetches images from (the owner lists them in FREEHOLD_IMAGE_FETCH or images.fetch)`,
      );
    const addresses = isIP(hostname)
      ? [{ address: hostname, family: isIP(hostname) as 4 | 6 }]
      : await untilAborted((this.#options.resolve ?? systemResolve)(hostname), signal).catch((error: unknown) => {
          if (signal.aborted) throw error;
          throw notAllowed(field, `${url.host} does not resolve`);
        });
    if (addresses.length === 0) throw notAllowed(field, `${url.host} does not resolve`);
    const check = this.#options.addressProblem ?? addressProblem;
    for (const { address } of addresses) {
      const problem = check(address);
      if (problem) throw notAllowed(field, `${url.host} is a ${problem} address, which is never fetched`);
    }
    return { url, addresses, port };
  }

  /** One GET to a checked hop; the connection can only use the hop's checked addresses. */
  #get(hop: Hop, field: string, signal: AbortSignal): Promise<IncomingMessage> {
    // node calls this instead of DNS (for a name; a literal IP is connected to as it is, and was checked).
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) callback(null, hop.addresses);
      else callback(null, hop.addresses[0]!.address, hop.addresses[0]!.family);
    };
    const options: RequestOptions = {
      method: "GET",
      host: hop.url.hostname.replace(/^\[|\]$/g, ""),
      port: hop.port,
      path: `${hop.url.pathname}${hop.url.search}`,
      headers: { accept: "image/*", "accept-encoding": "identity", "user-agent": "freehold-image-fetch" },
      lookup: pinned,
      signal,
      // No connection pool: a kept-alive socket would skip the lookup above for a later fetch.
      agent: false,
    };
    const request = hop.url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const outgoing = request(options, resolve);
      outgoing.on("error", reject);
      outgoing.end();
    }).catch((error: unknown) => {
      if (error instanceof InvalidRequestError) throw error;
      if (signal.aborted) throw error;
      throw failed(field, hop.url.host, `the connection failed (${(error as NodeJS.ErrnoException).code ?? "error"})`);
    }) as Promise<IncomingMessage>;
  }
}

/** `promise`, or a rejection when `signal` aborts first (a DNS lookup cannot be cancelled, only left behind). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The body, refused past `maxBytes` (by Content-Length before reading, else while it streams). */
async function readCapped(
  response: IncomingMessage,
  maxBytes: number,
  field: string,
  host: string,
  signal: AbortSignal,
): Promise<Buffer> {
  const tooLarge = () => failed(field, host, `the image is larger than ${maxBytes / (1024 * 1024)} MiB`);
  const declared = Number(response.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    response.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (error) {
    response.destroy();
    if (error instanceof InvalidRequestError || signal.aborted) throw error;
    throw failed(field, host, `the answer broke off (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (!response.complete) throw failed(field, host, "the answer broke off before its end");
  return Buffer.concat(chunks);
}
