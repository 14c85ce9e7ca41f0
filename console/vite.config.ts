import { resolve } from "node:path";
import { defineConfig } from "vite";

// Built by `npm run build:console` (part of `prepare`, so `npm ci` builds it) into dist/console, which
// src/http/console.ts serves at /console/. Everything is bundled: nothing is fetched from elsewhere at run time.
export default defineConfig({
  root: import.meta.dirname,
  base: "/console/",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: resolve(import.meta.dirname, "..", "dist", "console"),
    emptyOutDir: true,
    target: "es2022",
    // No inline data: URLs for scripts (the CSP allows scripts from 'self' only).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
