/**
 * The HTTP server around a Freehold: listening (refused beyond loopback without keys) and the drain on shutdown.
 */
import type { ServerType } from "@hono/node-server";
import { FreeholdError } from "./core/errors.js";
import type { Freehold } from "./library.js";

export interface RunningServer {
  url: string;
  freehold: Freehold;
  server: ServerType;
  /** Stops accepting, lets in-flight answers finish within the drain timeout, then stops every runner. */
  shutdown(drainSeconds?: number): Promise<void>;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Starts the HTTP server. Used by `freehold serve`, and by tests and embedders that want a real socket. Listening
 * beyond loopback with no API keys is refused (anyone on the network could use it) unless `insecureNoAuth`.
 */
export async function startServer(
  freehold: Freehold,
  options: { insecureNoAuth?: boolean } = {},
): Promise<RunningServer> {
  if (!isLoopbackHost(freehold.config.host) && !(await freehold.control.requiresKeys()) && !options.insecureNoAuth)
    throw new FreeholdError(
      `refusing to listen on ${freehold.config.host} with no API keys: anyone who can reach this address could use it. Create a key first (freehold keys create --name NAME --admin), or pass --insecure-no-auth if the network is trusted`,
      { code: "no_keys_on_public_address", status: 400, type: "invalid_request_error" },
    );
  const { serve } = await import("@hono/node-server");
  const shutdownController = new AbortController();
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const app = freehold.httpApp({
    shutdownSignal: shutdownController.signal,
    onRequestStart: () => {
      inFlight++;
    },
    onRequestEnd: () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    },
  });
  const { host, port } = freehold.config;
  const server = await new Promise<ServerType>((resolve, reject) => {
    const instance = serve({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }, () =>
      resolve(instance),
    );
    instance.once("error", reject);
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let shuttingDown: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${actualPort}`,
    freehold,
    server,
    shutdown(drainSeconds = freehold.config.drainTimeoutSeconds) {
      shuttingDown ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        if ("closeIdleConnections" in server) server.closeIdleConnections();
        if (inFlight > 0 && drainSeconds > 0) {
          await Promise.race([
            new Promise<void>((resolve) => {
              idle = resolve;
            }),
            new Promise<void>((resolve) => setTimeout(resolve, drainSeconds * 1000).unref()),
          ]);
        }
        shutdownController.abort();
        if ("closeAllConnections" in server) setTimeout(() => server.closeAllConnections(), 1000).unref();
        await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
        await freehold.close();
      })();
      return shuttingDown;
    },
  };
}
