import { accessSync, constants, existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * The llama-server the engine-parametrised tests use: FREEHOLD_LLAMA_SERVER, else a build `.ci/run` or
 * `freehold engine build` cached in ${XDG_CACHE_HOME:-~/.cache}/freehold/engines. Tests on the llama-server engine
 * skip with this reason when there is none.
 */
function findLlamaServer(): { path: string } | { missing: string } {
  const configured = process.env.FREEHOLD_LLAMA_SERVER;
  const usable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (configured) {
    return usable(configured)
      ? { path: configured }
      : { missing: `FREEHOLD_LLAMA_SERVER=${configured} is not an executable` };
  }
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "freehold", "engines");
  if (existsSync(cache)) {
    for (const name of readdirSync(cache).sort().reverse()) {
      const path = join(cache, name, "build", "bin", "llama-server");
      if (usable(path)) return { path };
    }
  }
  return {
    missing: `no llama-server binary: set FREEHOLD_LLAMA_SERVER, or build one into ${cache} (.ci/run does; or FREEHOLD_HOME=… freehold engine build)`,
  };
}

const found = findLlamaServer();
export const llamaServerPath: string | undefined = "path" in found ? found.path : undefined;
export const llamaServerMissing: string | false = "missing" in found ? found.missing : false;
if (llamaServerMissing) process.stderr.write(`# llama-server engine tests skipped: ${llamaServerMissing}\n`);

/** The engines a parametrised test runs on, each with the environment that selects it, or why it is skipped. */
export const engines: { name: "node-llama-cpp" | "llama-server"; env: Record<string, string>; skip: string | false }[] =
  [
    { name: "node-llama-cpp", env: { FREEHOLD_ENGINE: "node-llama-cpp" }, skip: false },
    {
      name: "llama-server",
      env: { FREEHOLD_ENGINE: "llama-server", ...(llamaServerPath ? { FREEHOLD_LLAMA_SERVER: llamaServerPath } : {}) },
      skip: llamaServerMissing,
    },
  ];

/** The process ids of a process's children (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
