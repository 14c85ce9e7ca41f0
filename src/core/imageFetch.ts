/**
 * Images a client names by http(s) URL, fetched by freehold itself when the owner allows the host
 * (FREEHOLD_IMAGE_FETCH). The port lives here so the HTTP edge can ask for bytes without knowing how they are
 * fetched; the implementation (src/providers/imageFetch.ts) is network code and lives where network code may.
 */
export interface ImageFetcher {
  /**
   * The bytes at `url`, at most `maxBytes`. Throws InvalidRequestError naming `field`: `image_url_not_allowed`
   * when the URL may not be fetched (host not listed, private address, userinfo, scheme, port), `image_fetch_failed`
   * when fetching it failed (status, size, time, connection). Never returns or quotes a body it refused.
   */
  fetchImage(url: string, field: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<Buffer>;
}

/** One fetch, for the server log: the host and the size, never the URL's path or query (they may carry secrets). */
export interface ImageFetchRecord {
  host: string;
  bytes: number;
  ms: number;
  /** Why it failed (a code), when it did. */
  error?: string;
}

/**
 * One entry of FREEHOLD_IMAGE_FETCH: `images.example.com`, `*.example.com` (its subdomains, not itself) or `*` (any
 * public host), each optionally `:port` (without one, 80 and 443).
 */
export const IMAGE_HOST_ENTRY = /^(\*|(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(\d{1,5}))?$/i;
