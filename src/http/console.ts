import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative, resolve, sep } from "node:path";
import type { Hono } from "hono";
import { FreeholdError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import { guard } from "./guard.js";

/** Where `npm ci` (vite build, see package.json) puts the console: dist/console, from src/http or dist/http alike. */
export const defaultConsoleDir = resolve(import.meta.dirname, "..", "..", "dist", "console");

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * Scripts and styles from this server only, data calls to this server only, no frames, no forms posting elsewhere,
 * no plug-ins. Inline styles are allowed for one reason: an evaluation report (inline CSS and SVG, no scripts) is
 * shown in a sandboxed srcdoc frame, which inherits this policy. Inline scripts stay forbidden.
 */
export const consoleCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

interface StaticFile {
  bytes: Uint8Array;
  type: string;
  /** Vite names bundles by content hash (assets/index-3f9a….js): those never change under their name. */
  immutable: boolean;
}

/** Every regular file under `dir`, by its path relative to it with "/" separators; dotfiles are left out. */
function listFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      if (name.startsWith(".")) continue;
      const path = join(folder, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile()) {
        const rel = relative(dir, path).split(sep).join("/");
        files.set(rel, {
          bytes: readFileSync(path),
          type: contentTypes[extname(name).toLowerCase()] ?? "application/octet-stream",
          immutable: rel.startsWith("assets/"),
        });
      }
    }
  };
  walk(dir);
  return files;
}

/**
 * GET /console/ and its files. The files are read once into a table keyed by relative path, and a request is
 * answered only when its decoded path is exactly a key: nothing is ever joined onto a filesystem path from a URL, so
 * no spelling of "..", encoded or not, reaches outside the folder.
 */
export function registerConsoleRoutes(app: Hono<AppEnv>, dir = defaultConsoleDir): void {
  let files: Map<string, StaticFile> | undefined;
  const table = () => {
    if (files) return files;
    try {
      if (!statSync(join(dir, "index.html")).isFile()) throw new Error("not a file");
    } catch {
      throw new FreeholdError(
        `The web console is not built (no ${join(dir, "index.html")}); run \`npm run build:console\` (npm ci does it)`,
        { code: "console_not_built", status: 503, type: "server_error" },
      );
    }
    files = listFiles(dir);
    return files;
  };

  // Public: the page holds no data; every data call it makes carries the caller's key to a guarded route.
  app.get("/console", guard("public"), (c) => {
    const url = new URL(c.req.url);
    return c.redirect(`/console/${url.search}`, 301);
  });

  app.get("/console/*", guard("public"), (c) => {
    const raw = new URL(c.req.url).pathname.slice("/console/".length);
    let path: string;
    try {
      path = raw === "" ? "index.html" : decodeURIComponent(raw);
    } catch {
      path = "";
    }
    const file = table().get(path);
    if (!file)
      throw new FreeholdError(`The console has no file ${JSON.stringify(raw)}; open /console/`, {
        code: "unknown_url",
        status: 404,
        type: "not_found_error",
      });
    return c.body(file.bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": file.type,
      "cache-control": file.immutable ? "public, max-age=31536000, immutable" : "no-cache",
      "content-security-policy": consoleCsp,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
      "cross-origin-opener-policy": "same-origin",
    });
  });
}
