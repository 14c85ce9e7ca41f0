import { isIP } from "node:net";

const loopbackNames = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

function hostname(hostHeader: string): string {
  const header = hostHeader.trim().toLowerCase();
  if (header.startsWith("[")) return header.slice(0, header.indexOf("]") + 1);
  const colon = header.lastIndexOf(":");
  return colon === -1 ? header : header.slice(0, colon);
}

function isLoopbackName(name: string): boolean {
  return loopbackNames.has(name) || name.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(name);
}

function isWildcard(listenHost: string): boolean {
  return listenHost === "0.0.0.0" || listenHost === "::" || listenHost === "[::]";
}

/**
 * Whether a request's Host header names this server. On loopback only loopback names pass (DNS-rebinding defence);
 * on a specific address, that address too; on a wildcard address any host, since its names cannot be known.
 * `allowed` adds names (exact, or ".example.com" for a domain and its subdomains).
 */
export function hostAllowed(hostHeader: string | undefined, listenHost: string, allowed: readonly string[]): boolean {
  if (!hostHeader) return false;
  const name = hostname(hostHeader);
  if (isLoopbackName(name)) return true;
  for (const entry of allowed) {
    const rule = entry.toLowerCase();
    if (rule === "*" || rule === name || (rule.startsWith(".") && (name.endsWith(rule) || name === rule.slice(1))))
      return true;
  }
  if (isWildcard(listenHost)) return true;
  const listen = listenHost.toLowerCase();
  if (name === listen || name === `[${listen}]`) return true;
  return isIP(listen) === 0 && name === listen;
}
