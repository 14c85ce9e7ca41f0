import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const projectRoot = resolve(import.meta.dirname, "..", "..");

/**
 * The real pretrained tiny llama: the copy packaged as the demo model (assets/demo), else the one beside the project
 * (../shared/models). Tests skip with a reason without it.
 */
const packagedStories = resolve(projectRoot, "assets", "demo", "stories260K.gguf");
export const storiesModelPath = existsSync(packagedStories)
  ? packagedStories
  : resolve(projectRoot, "..", "shared", "models", "stories260K.gguf");
export const storiesModelMissing: string | false = existsSync(storiesModelPath)
  ? false
  : `the real test model is absent (${storiesModelPath}); it ships in ../shared/models`;

/** A fresh temporary directory, removed when `dispose` runs (use with t.after). */
export function temporaryDirectory(prefix = "freehold-test-"): { path: string; dispose: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  // Retries: a server closing beside the removal may still be finishing a write (a WAL file, the audit witness).
  return { path, dispose: () => rmSync(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }) };
}
